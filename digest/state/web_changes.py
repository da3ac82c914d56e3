"""What subscribers changed on the web, kept in the state: settings, unsubscribes, sign-ups.

Every change is also written to `web_events` (time, action, where it came from) so an opt-out
can be shown later, and every unsubscribe and its undoing to the suppression journal beside the
state (`suppressions`), which sends honour too. Addresses are keys casefolded (`address_key`),
as subscribers.yaml matches them. How these changes are laid over the file is
`digest.subscribers.merge`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal

from ..clock import parse_stamp, stamp
from ..models import address_key
from . import suppressions
from .bounce_records import BounceRecords
from .records import WebEvent, WebRecord
from .sqlite import State

SignUpStatus = Literal["waiting", "replaced", "nothing waiting"]


def _time(value: str | None) -> datetime | None:
    return parse_stamp(value) if value else None


def _record(row: Any) -> WebRecord:
    return WebRecord(
        email=row["email"],
        prefs=json.loads(row["prefs"] or "{}"),
        pending=json.loads(row["pending"]) if row["pending"] else None,
        pending_at=_time(row["pending_at"]),
        confirmed_at=_time(row["confirmed_at"]),
        unsubscribed_at=_time(row["unsubscribed_at"]),
        unsubscribed_via=row["unsubscribed_via"],
        created_at=_time(row["created_at"]),
    )


class WebChanges:
    """The web's subscriber tables in one open state. A read-only state made before the web
    existed simply has no changes."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.db = state.db
        self.present = state.has_table("web_subscribers")
        self.journal = suppressions.journal_of(state)

    # -- reading ------------------------------------------------------------------------------
    def record(self, email: str) -> WebRecord | None:
        if not self.present:
            return None
        row = self.db.execute(
            "SELECT * FROM web_subscribers WHERE key = ?", (address_key(email),)
        ).fetchone()
        return _record(row) if row else None

    def records(self) -> dict[str, WebRecord]:
        """Every address the web knows, keyed by the casefolded address, oldest first."""
        if not self.present:
            return {}
        rows = self.db.execute("SELECT * FROM web_subscribers ORDER BY created_at, key")
        return {row["key"]: _record(row) for row in rows}

    def keys(self) -> Iterator[str]:
        """The casefolded address of every record, one at a time (a send looks for them in
        a list of any length without holding the records)."""
        if not self.present:
            return iter(())
        return (row[0] for row in self.db.execute("SELECT key FROM web_subscribers"))

    def unsubscribed_since(self, moment: datetime) -> set[str]:
        """Addresses (casefolded) unsubscribed at or after `moment` and not since undone."""
        if not self.present:
            return set()
        rows = self.db.execute(
            "SELECT key FROM web_subscribers WHERE unsubscribed_at >= ?", (stamp(moment),)
        )
        return {row[0] for row in rows}

    def events(self, email: str) -> list[WebEvent]:
        if not self.present:
            return []
        rows = self.db.execute(
            "SELECT * FROM web_events WHERE key = ? ORDER BY id", (address_key(email),)
        )
        return [
            WebEvent(parse_stamp(r["at"]), r["action"], r["via"], r["client"], r["detail"])
            for r in rows
        ]

    # -- changing -----------------------------------------------------------------------------
    def _ensure(self, email: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO web_subscribers(key, email, created_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO NOTHING",
            (address_key(email), email.strip(), stamp(now), stamp(now)),
        )

    def _event(
        self,
        email: str,
        action: str,
        via: str,
        now: datetime,
        client: str | None = None,
        detail: Any = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO web_events(key, at, action, via, client, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                address_key(email),
                stamp(now),
                action,
                via,
                client,
                json.dumps(detail, ensure_ascii=False) if detail is not None else None,
            ),
        )

    def unsubscribe(self, email: str, via: str, now: datetime) -> bool:
        """Stop every digest to this address. Idempotent: False when it was already so."""
        with self.state.transaction():
            current = self.record(email)
            if current is not None and current.unsubscribed_at is not None:
                return False
            self._ensure(email, now)
            self.db.execute(
                "UPDATE web_subscribers SET unsubscribed_at = ?, unsubscribed_via = ?, "
                "updated_at = ? WHERE key = ?",
                (stamp(now), via, stamp(now), address_key(email)),
            )
            self._event(email, "unsubscribe", via, now)
            suppressions.append(self.journal, "unsubscribe", email, via, now)
        return True

    def resubscribe(self, email: str, via: str, now: datetime, in_file: bool) -> bool:
        """Undo an unsubscribe. The link that asked for it proved the address is theirs, so an
        address not in the file becomes a confirmed web subscriber. False when they already
        receive the digest."""
        with self.state.transaction():
            current = self.record(email)
            unsubscribed = current is not None and current.unsubscribed_at is not None
            confirmed = current is not None and current.confirmed_at is not None
            if not unsubscribed and (in_file or confirmed):
                return False
            self._ensure(email, now)
            self.db.execute(
                "UPDATE web_subscribers SET unsubscribed_at = NULL, unsubscribed_via = NULL, "
                "confirmed_at = COALESCE(confirmed_at, ?), updated_at = ? WHERE key = ?",
                (stamp(now), stamp(now), address_key(email)),
            )
            self._event(email, "resubscribe", via, now)
            suppressions.append(self.journal, "resubscribe", email, via, now)
        return True

    def set_preferences(self, email: str, prefs: dict[str, Any], via: str, now: datetime) -> None:
        """Replace the settings changed on the web (see `web_changes` for what to pass)."""
        clean = dict(prefs)
        with self.state.transaction():
            self._ensure(email, now)
            self.db.execute(
                "UPDATE web_subscribers SET prefs = ?, updated_at = ? WHERE key = ?",
                (json.dumps(clean, ensure_ascii=False), stamp(now), address_key(email)),
            )
            self._event(email, "preferences", via, now, detail=clean)

    def sign_up(self, email: str, details: dict[str, Any], now: datetime, client: str) -> str:
        """Keep a sign-up's settings until the address confirms, and return the sign-up's id for
        its confirmation link. A second sign-up of the same address replaces the first one's
        (one row per address, never two subscribers), and the first one's link stops working."""
        clean = dict(details)
        nonce = secrets.token_urlsafe(12)
        with self.state.transaction():
            self._ensure(email, now)
            self.db.execute(
                "UPDATE web_subscribers SET pending = ?, pending_at = ?, pending_nonce = ?, "
                "updated_at = ? WHERE key = ?",
                (
                    json.dumps(clean, ensure_ascii=False),
                    stamp(now),
                    nonce,
                    stamp(now),
                    address_key(email),
                ),
            )
            self._event(email, "signup", "signup", now, client=client, detail=clean)
        return nonce

    def sign_up_status(self, email: str, nonce: str | None) -> SignUpStatus:
        """Whether the sign-up with this id is the one waiting ("waiting"), was replaced by a
        newer one ("replaced"), or nothing waits ("nothing waiting"). A link sent before sign-ups
        had ids (None) matches only a sign-up from that time."""
        if not self.present:
            return "nothing waiting"
        row = self.db.execute(
            "SELECT pending IS NOT NULL AS waiting, pending_nonce FROM web_subscribers "
            "WHERE key = ?",
            (address_key(email),),
        ).fetchone()
        if row is None or not row["waiting"]:
            return "nothing waiting"
        # The id comes from a signed link, so a plain comparison leaks nothing worth having.
        return "waiting" if row["pending_nonce"] == nonce else "replaced"

    def confirm(
        self,
        email: str,
        now: datetime,
        client: str,
        keep: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
        nonce: str | None,
    ) -> SignUpStatus | Literal["confirmed"]:
        """Apply the waiting sign-up with this id (see `sign_up_status`): `keep(pending, current
        prefs)` says which settings become the web's; any unsubscribe is lifted. "confirmed",
        or why nothing changed."""
        with self.state.transaction():
            status = self.sign_up_status(email, nonce)
            current = self.record(email)
            if status != "waiting" or current is None or current.pending is None:
                return status
            prefs = keep(current.pending, current.prefs)
            self.db.execute(
                "UPDATE web_subscribers SET prefs = ?, pending = NULL, pending_at = NULL, "
                "pending_nonce = NULL, confirmed_at = COALESCE(confirmed_at, ?), "
                "unsubscribed_at = NULL, unsubscribed_via = NULL, updated_at = ? WHERE key = ?",
                (
                    json.dumps(prefs, ensure_ascii=False),
                    stamp(now),
                    stamp(now),
                    address_key(email),
                ),
            )
            self._event(email, "confirm", "confirm-page", now, client=client, detail=prefs)
            if current.unsubscribed_at is not None:
                suppressions.append(self.journal, "resubscribe", email, "confirm-page", now)
            # Confirming proved the address takes mail again: a bounce's suppression ends.
            lifted = BounceRecords(self.state).lift(email, "confirm-page", now)
            if lifted or address_key(email) in suppressions.suppressed(self.journal):
                suppressions.append(self.journal, "unsuppress", email, "confirm-page", now)
        return "confirmed"
