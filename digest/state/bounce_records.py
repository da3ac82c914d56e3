"""Bounces and complaints kept in the state: each mail read (once), the events it meant per
subscriber, and suppressions (who, why, when, lifted when).

A suppression is also written to the suppression journal beside the state (`suppressions`),
as an unsubscribe is, so a lost or restored state still keeps a dead address out. Writing
that line is the caller's part when it records a batch (`journal_lines`), so a batch of
bounces costs one fsync; lifting a suppression writes it here. Addresses are keyed
casefolded (`address_key`), as everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..clock import parse_stamp, stamp
from ..models import address_key
from . import suppressions
from .records import BounceEventRecord, BounceSummary, Suppression
from .sqlite import State


def _suppression(row: Any) -> Suppression:
    return Suppression(
        email=row["email"],
        reason=row["reason"],
        at=parse_stamp(row["at"]),
        lifted_at=parse_stamp(row["lifted_at"]) if row["lifted_at"] else None,
        lifted_via=row["lifted_via"],
    )


class BounceRecords:
    """The bounce tables of one open state. A read-only state made before them has none."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.db = state.db
        self.present = state.has_table("bounce_mails")
        self.journal = suppressions.journal_of(state)

    # -- mails and events -------------------------------------------------------------------
    def known(self, fingerprint: str) -> bool:
        """Whether this mail (by its fingerprint) was recorded already."""
        if not self.present:
            return False
        row = self.db.execute(
            "SELECT 1 FROM bounce_mails WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return row is not None

    def add_mail(
        self,
        fingerprint: str,
        kind: str,
        file: str,
        at: datetime,
        subscriber: str | None,
        action: str,
        details: dict[str, Any],
    ) -> int | None:
        """Record one mail; None when a mail with this fingerprint is recorded already."""
        row = self.db.execute(
            "INSERT INTO bounce_mails(fingerprint, kind, file, at, subscriber, action, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(fingerprint) DO NOTHING RETURNING id",
            (
                fingerprint,
                kind,
                file,
                stamp(at),
                subscriber,
                action,
                json.dumps(details, ensure_ascii=False),
            ),
        ).fetchone()
        return int(row[0]) if row is not None else None

    def add_event(self, mail_id: int, event: BounceEventRecord) -> None:
        self.db.execute(
            "INSERT INTO bounce_events(key, email, mail_id, delivery_id, at, kind, status, code, "
            "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                address_key(event.email),
                event.email,
                mail_id,
                event.delivery_id,
                stamp(event.at),
                event.kind,
                event.status,
                event.code,
                event.reason,
            ),
        )

    def events(self, email: str, since: datetime | None = None) -> list[BounceEventRecord]:
        """The subscriber's events, oldest first; only those after `since` when given."""
        if not self.present:
            return []
        rows = self.db.execute(
            "SELECT * FROM bounce_events WHERE key = ? AND at > ? ORDER BY id",
            (address_key(email), stamp(since) if since else ""),
        )
        return [
            BounceEventRecord(
                r["email"],
                r["kind"],
                parse_stamp(r["at"]),
                r["delivery_id"],
                r["status"],
                r["code"],
                r["reason"],
            )
            for r in rows
        ]

    def summaries(self) -> list[BounceSummary]:
        """Each subscriber with bounce events: counts by kind and the latest, newest first."""
        if not self.present:
            return []
        rows = self.db.execute(
            "SELECT "
            "SUM(CASE WHEN e.kind = 'hard' THEN 1 ELSE 0 END) AS hard, "
            "SUM(CASE WHEN e.kind = 'soft' THEN 1 ELSE 0 END) AS soft, "
            "SUM(CASE WHEN e.kind = 'complaint' THEN 1 ELSE 0 END) AS complaints, "
            "SUM(CASE WHEN e.kind = 'auto-reply' THEN 1 ELSE 0 END) AS auto, "
            "MAX(e.id) AS last FROM bounce_events e GROUP BY e.key ORDER BY last DESC"
        ).fetchall()
        result = []
        for r in rows:
            last = self.db.execute(
                "SELECT email, at, kind, status, reason FROM bounce_events WHERE id = ?",
                (r["last"],),
            ).fetchone()
            result.append(
                BounceSummary(
                    last["email"],
                    r["hard"],
                    r["soft"],
                    r["complaints"],
                    r["auto"],
                    parse_stamp(last["at"]),
                    last["kind"],
                    last["status"],
                    last["reason"],
                )
            )
        return result

    # -- deliveries a bounce can name --------------------------------------------------------
    def delivery_subscriber(self, delivery_id: int) -> str | None:
        """The subscriber of a delivery (what a VERP token names), or None."""
        row = self.db.execute(
            "SELECT subscriber FROM deliveries WHERE id = ?", (delivery_id,)
        ).fetchone()
        return row["subscriber"] if row else None

    def delivery_with_message_id(self, message_ids: Sequence[str]) -> tuple[int, str] | None:
        """The latest delivery (id, subscriber) whose Message-ID is one of these."""
        for message_id in message_ids:
            row = self.db.execute(
                "SELECT id, subscriber FROM deliveries WHERE message_id = ? ORDER BY id DESC "
                "LIMIT 1",
                (message_id.strip(),),
            ).fetchone()
            if row is not None:
                return int(row["id"]), row["subscriber"]
        return None

    def latest_delivery_to(self, address: str) -> tuple[int, str] | None:
        """The latest delivery (id, subscriber) to this address: as written, or lowercased
        (the index is on the address as the subscriber wrote it)."""
        spellings = list(dict.fromkeys([address.strip(), address.strip().lower()]))
        row = self.db.execute(
            "SELECT id, subscriber FROM deliveries WHERE subscriber IN "
            f"({','.join('?' * len(spellings))}) ORDER BY id DESC LIMIT 1",
            spellings,
        ).fetchone()
        return (int(row["id"]), row["subscriber"]) if row else None

    # -- suppressions ------------------------------------------------------------------------
    def suppression(self, email: str) -> Suppression | None:
        """The suppression in force for this address, or None."""
        if not self.present:
            return None
        row = self.db.execute(
            "SELECT * FROM suppressions WHERE key = ? AND lifted_at IS NULL",
            (address_key(email),),
        ).fetchone()
        return _suppression(row) if row else None

    def suppressed(self) -> dict[str, Suppression]:
        """Every suppression in force, keyed by the casefolded address."""
        if not self.present:
            return {}
        rows = self.db.execute("SELECT * FROM suppressions WHERE lifted_at IS NULL")
        return {row["key"]: _suppression(row) for row in rows}

    def last_lifted(self, email: str) -> datetime | None:
        """When this address's latest suppression was lifted (events before it are spent)."""
        if not self.present:
            return None
        row = self.db.execute(
            "SELECT MAX(lifted_at) FROM suppressions WHERE key = ?", (address_key(email),)
        ).fetchone()
        return parse_stamp(row[0]) if row and row[0] else None

    def suppress(self, email: str, reason: str, at: datetime, mail_id: int | None) -> bool:
        """Suppress the address (in the caller's transaction); False when it already is. The
        caller writes the journal line (`journal_lines`)."""
        cursor = self.db.execute(
            "INSERT INTO suppressions(key, email, reason, at, mail_id) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(key) WHERE lifted_at IS NULL DO NOTHING",
            (address_key(email), email.strip(), reason, stamp(at), mail_id),
        )
        return cursor.rowcount == 1

    def unsuppress(self, email: str, via: str, now: datetime) -> bool:
        """Lift the address's suppression (in the state and the journal), in one transaction.
        False when neither holds one."""
        journal_says = address_key(email) in suppressions.suppressed(self.journal)
        with self.state.transaction():
            lifted = self.lift(email, via, now)
            if lifted or journal_says:
                suppressions.append(self.journal, "unsuppress", email, via, now)
        return lifted or journal_says

    def lift(self, email: str, via: str, now: datetime) -> bool:
        """Lift the suppression in force, in the caller's transaction (no journal line)."""
        if not self.present:
            return False
        cursor = self.db.execute(
            "UPDATE suppressions SET lifted_at = ?, lifted_via = ? "
            "WHERE key = ? AND lifted_at IS NULL",
            (stamp(now), via, address_key(email)),
        )
        return cursor.rowcount == 1


def journal_lines(
    suppressed: Iterable[tuple[str, datetime]], via: str = "bounce"
) -> list[tuple[str, str, str, datetime]]:
    """The suppression journal's lines for addresses just suppressed (see `append_all`)."""
    return [("suppress", email, via, at) for email, at in suppressed]
