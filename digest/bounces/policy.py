"""What a subscriber's bounce history means: suppress, count, unsubscribe or nothing.

Pure: the caller passes every recorded event of one subscriber (from the state) and gets the
action for the newest one, with a reason staff can read ("hard bounce 5.1.1 on 2026-12-03").

- a hard bounce suppresses at once;
- `soft_limit` soft bounces within `soft_window` suppress; soft bounces of the SAME delivery
  count once (a digest retried through three MXs is one failure, not three);
- a complaint unsubscribes;
- an auto-reply (and anything else) changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Action = Literal["suppressed", "counted", "unsubscribed", "none"]
EventKind = Literal["hard", "soft", "complaint", "auto-reply", "other"]

DEFAULT_SOFT_LIMIT = 3
DEFAULT_SOFT_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class BounceEvent:
    """One recorded event for one subscriber.

    `delivery_id` is the delivery the bounce belongs to (from VERP or the Message-ID), or
    None when it could not be told; unattributed soft bounces each count on their own.
    `status` is the DSN status (e.g. "5.1.1") or None; `at` is when it was processed.
    """

    kind: EventKind
    at: datetime
    delivery_id: int | None = None
    status: str | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    soft_count: int = 0  # distinct soft-bounced deliveries within the window


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


def soft_count(
    events: Sequence[BounceEvent], now: datetime, window: timedelta = DEFAULT_SOFT_WINDOW
) -> int:
    """Soft bounces within `window` before `now`, one per delivery."""
    deliveries: set[object] = set()
    for index, event in enumerate(events):
        if event.kind == "soft" and now - window <= event.at <= now:
            deliveries.add(event.delivery_id if event.delivery_id is not None else ("n", index))
    return len(deliveries)


def decide(
    events: Sequence[BounceEvent],
    now: datetime,
    soft_limit: int = DEFAULT_SOFT_LIMIT,
    soft_window: timedelta = DEFAULT_SOFT_WINDOW,
) -> Decision:
    """The action the newest event calls for, given all of the subscriber's events.

    Example: three soft bounces on three digests within 30 days ->
    Decision("suppressed", "3 soft bounces within 30 days, last 4.2.2 on 2026-12-03", 3).
    """
    if not events:
        return Decision("none", "no bounce events")
    latest = max(events, key=lambda e: e.at)
    status = f" {latest.status}" if latest.status else ""
    if latest.kind == "complaint":
        return Decision("unsubscribed", f"complaint on {_day(latest.at)}")
    if latest.kind == "hard":
        return Decision("suppressed", f"hard bounce{status} on {_day(latest.at)}")
    if latest.kind != "soft":
        return Decision("none", f"{latest.kind} on {_day(latest.at)} changes nothing")
    count = soft_count(events, now, soft_window)
    days = soft_window.days if soft_window.days * 86400 == soft_window.total_seconds() else None
    span = f"{days} days" if days is not None else str(soft_window)
    if count >= soft_limit:
        return Decision(
            "suppressed",
            f"{count} soft bounces within {span}, last{status} on {_day(latest.at)}",
            count,
        )
    return Decision(
        "counted", f"soft bounce{status} on {_day(latest.at)} ({count} of {soft_limit})", count
    )


def event_kind(kind: str, hard: bool) -> EventKind:
    """The policy's event kind for a classified mail: its kind, a bounce split by hardness."""
    if kind == "bounce":
        return "hard" if hard else "soft"
    if kind in ("complaint", "auto-reply"):
        return kind  # type: ignore[return-value]
    return "other"
