"""What the state hands back: frozen records of items, runs, deliveries and web changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..models import Item


@dataclass(frozen=True)
class StoredItem:
    item: Item
    first_seen: datetime
    tags: dict[str, Any] | None = None  # as last tagged, with the taxonomy of `tagged_with`
    tagged_with: str | None = None


@dataclass(frozen=True)
class Delivery:
    id: int
    run_id: int
    subscriber: str
    message_id: str
    status: str
    item_ids: tuple[str, ...]
    error: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    profile: dict[str, Any] | None = None  # what the digest was made for (see schema)
    more_ids: tuple[str, ...] = ()  # stories listed on the web past `max_items`

    @property
    def all_ids(self) -> tuple[str, ...]:
        """Every story the delivery counts as sent: in the email, then on its web page."""
        return self.item_ids + self.more_ids


@dataclass(frozen=True)
class Finished:
    """What became of one delivery: `error` is None when the server accepted it; `uncertain`
    when the message was sent whole but its end was never answered."""

    delivery_id: int
    error: str | None
    attempts: int
    uncertain: bool = False

    @property
    def status(self) -> str:
        return "uncertain" if self.uncertain else ("failed" if self.error else "sent")


@dataclass(frozen=True)
class Run:
    id: int
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    sent: int
    failed: int
    skipped: int
    due_at: str | None
    note: str | None


@dataclass(frozen=True)
class WebRecord:
    """What the web holds for one address."""

    email: str
    prefs: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, Any] | None = None
    pending_at: datetime | None = None
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    unsubscribed_via: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class WebEvent:
    at: datetime
    action: str
    via: str
    client: str | None
    detail: str | None


@dataclass(frozen=True)
class BounceEventRecord:
    """One bounce event of one subscriber: kind hard | soft | complaint | auto-reply."""

    email: str
    kind: str
    at: datetime
    delivery_id: int | None
    status: str | None
    code: int | None
    reason: str | None


@dataclass(frozen=True)
class Suppression:
    """Why an address gets no digest until staff lift it (or it confirms itself again)."""

    email: str
    reason: str
    at: datetime
    lifted_at: datetime | None = None
    lifted_via: str | None = None


@dataclass(frozen=True)
class BounceSummary:
    """One subscriber's bounces, for `digest history`."""

    email: str
    hard: int
    soft: int
    complaints: int
    auto_replies: int
    last_at: datetime
    last_kind: str
    last_status: str | None
    last_reason: str | None
