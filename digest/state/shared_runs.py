"""Several hosts on one run, through a PostgreSQL state (the tables: `schema.POSTGRESQL_TABLES`).

The host that opens a run writes its checked list into the database, in batches; every host
(and every worker process of each) claims one batch at a time with `FOR UPDATE SKIP LOCKED`,
holds it under a lease it renews, and marks it done once each of its subscribers has an
outcome recorded. A batch whose holder stopped renewing is taken over when the lease lapses.
The run ends when no batch is left; whoever finds that closes it with the totals of all.

Each acceptance (the server's 250) is written to the database the moment it arrives
(`acceptances.AcceptanceWriter`), so a host that dies leaves the database knowing what its
servers took, and whoever takes its batch over resends only what is still pending.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..clock import stamp
from .sqlite import State

ABANDONED_AFTER = 10  # leases without any host claiming or renewing: the run is left for good
# A run's totals from its batches (every host's), for the UPDATE that closes it
_TOTALS = (
    "sent = t.sent, failed = t.failed, skipped = t.skipped FROM "
    "(SELECT COALESCE(SUM(sent), 0) AS sent, COALESCE(SUM(failed), 0) AS failed, "
    "COALESCE(SUM(skipped), 0) AS skipped FROM run_batches WHERE run_id = ?) t"
)
WRITING = -1  # the batch that stands for the rest of the list while its opener writes it


def holder_id() -> str:
    """One claimer, as claims name it: `host:pid:nonce` (two in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class OpenRun:
    run_id: int
    signature: str
    opened_by: str
    subscribers: int
    idle: timedelta  # since a host last claimed or renewed a batch of it
    due_at: str | None


@dataclass(frozen=True)
class Claim:
    batch: int
    size: int
    taken_over: bool  # someone held it before: their work is looked at first


@dataclass(frozen=True)
class Progress:
    undone: int  # batches not done
    held: int  # of those, held under a live lease by someone
    wait: float  # seconds until the first live lease lapses (0: none)
    writing: str | None = None  # "live": the opener still writes the list; "gone": it stopped


class SharedRuns:
    """The shared-run tables of one open PostgreSQL state."""

    def __init__(self, state: State) -> None:
        assert state.shared, "shared runs need a PostgreSQL state"
        self.state, self.db = state, state.db

    # -- opening and joining --------------------------------------------------------------------
    def open_run(self) -> OpenRun | None:
        row = self.db.execute(
            "SELECT s.run_id, s.signature, s.opened_by, s.subscribers, "
            "EXTRACT(EPOCH FROM now() - s.seen_at) AS idle, r.due_at FROM shared_runs s "
            "JOIN runs r ON r.id = s.run_id WHERE r.status = 'running' "
            "ORDER BY s.run_id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        idle = timedelta(seconds=float(row["idle"]))
        return OpenRun(row[0], row[1], row[2], row[3], idle, row["due_at"])

    def publish(
        self,
        run_id: int,
        signature: str,
        subscribers: int,
        batch_size: int,
        writer: tuple[str, timedelta],
    ) -> None:
        """Make a new run known (in the caller's transaction) before its list is written:
        the batch `WRITING`, held by the `writer` (holder, lease) until `written`, keeps it
        open while `add` writes the list a few batches at a time."""
        batches = -(-subscribers // batch_size)
        self.db.execute(
            "INSERT INTO shared_runs(run_id, signature, opened_by, batches, subscribers) "
            "VALUES (?, ?, ?, ?, ?)",
            (run_id, signature, holder_id(), batches, subscribers),
        )
        holder, lease = writer
        self.db.execute(
            "INSERT INTO run_batches(run_id, batch, size, holder, lease_until) "
            "VALUES (?, ?, 0, ?, now() + make_interval(secs => ?))",
            (run_id, WRITING, holder, lease.total_seconds()),
        )

    def add(
        self, run_id: int, rows: Sequence[str], first: int, batch_size: int, lease: timedelta
    ) -> None:
        """Write whole batches of the list (JSON per subscriber, in send order) from position
        `first`, in one transaction of their own: other hosts may claim them at once."""
        with self.state.transaction(lock=None):
            self.db.copy_rows(
                "run_subscribers",
                ("run_id", "batch", "position", "data"),
                (
                    (run_id, (first + i) // batch_size, (first + i) % batch_size, data)
                    for i, data in enumerate(rows)
                ),
            )
            self.db.execute(
                "INSERT INTO run_batches(run_id, batch, size) SELECT ?, b, "
                "LEAST(?, ? - b * ?) FROM generate_series(?::integer, ?::integer) AS b",
                (
                    run_id, batch_size, first + len(rows), batch_size,
                    first // batch_size, (first + len(rows) - 1) // batch_size,
                ),
            )  # fmt: skip
            self._renew_writing(run_id, lease)

    def written(self, run_id: int) -> None:
        """The whole list is written: the run can end once its batches are done."""
        self.db.execute("DELETE FROM run_batches WHERE run_id = ? AND batch = ?", (run_id, WRITING))

    def stopped_writing(self, run_id: int) -> None:
        """The opener could not finish the list: the run is left at once (see `Progress`)."""
        self.db.execute(
            "UPDATE run_batches SET lease_until = now() - interval '1 second' "
            "WHERE run_id = ? AND batch = ?",
            (run_id, WRITING),
        )

    def writing(self, run_id: int) -> str | None:
        """Whether the run's list is still being written: "live", "gone" (its writer stopped
        or died) or None (all written)."""
        row = self.db.execute(
            "SELECT lease_until > now() FROM run_batches WHERE run_id = ? AND batch = ?",
            (run_id, WRITING),
        ).fetchone()
        return None if row is None else ("live" if row[0] else "gone")

    def _renew_writing(self, run_id: int, lease: timedelta) -> None:
        self.db.execute(
            "UPDATE run_batches SET lease_until = now() + make_interval(secs => ?) "
            "WHERE run_id = ? AND batch = ?",
            (lease.total_seconds(), run_id, WRITING),
        )
        self._seen(run_id)

    def abandon(self, run_id: int, now: datetime, note: str) -> None:
        """Close a run nobody works on any more; its pending rows are resent by the next."""
        with self.state.transaction(lock="runs"):
            self.db.execute(
                "UPDATE runs SET status = 'aborted', finished_at = ?, note = ? "
                "WHERE id = ? AND status = 'running'",
                (stamp(now), note, run_id),
            )
            self._drop_list(run_id)

    # -- claims -----------------------------------------------------------------------------
    def release_dead_local_holders(self, run_id: int) -> None:
        """Claims of processes of this host that are gone (killed) lapse at once."""
        host = socket.gethostname()
        rows = self.db.execute(
            "SELECT DISTINCT holder FROM run_batches WHERE run_id = ? AND NOT done "
            "AND holder LIKE ?",
            (run_id, f"{host}:%"),
        ).fetchall()
        for (holder,) in rows:
            pid = holder.split(":")[1] if holder.count(":") >= 1 else ""
            if pid.isdigit() and not _alive(int(pid)):
                self.db.execute(
                    "UPDATE run_batches SET lease_until = now() - interval '1 second' "
                    "WHERE run_id = ? AND holder = ? AND NOT done",
                    (run_id, holder),
                )

    def claim(self, run_id: int, holder: str, lease: timedelta) -> Claim | None:
        """The first free batch (never claimed, released, or its lease lapsed), now held."""
        row = self.db.execute(
            "WITH pick AS (SELECT batch, holder AS previous FROM run_batches "
            "WHERE run_id = ? AND NOT done AND (lease_until IS NULL OR lease_until < now()) "
            "AND batch >= 0 ORDER BY batch LIMIT 1 FOR UPDATE SKIP LOCKED) "
            "UPDATE run_batches b SET holder = ?, "
            "lease_until = now() + make_interval(secs => ?) FROM pick "
            "WHERE b.run_id = ? AND b.batch = pick.batch RETURNING b.batch, b.size, pick.previous",
            (run_id, holder, lease.total_seconds(), run_id),
        ).fetchone()
        if row is None:
            return None
        self._seen(run_id)
        return Claim(row[0], row[1], row[2] is not None)

    def renew(self, run_id: int, holder: str, batches: Sequence[int], lease: timedelta) -> set[int]:
        """Extend the lease on these batches; returns those still held (a batch another host
        took over after our lease lapsed is not)."""
        if not batches:
            return set()
        which, numbers = self.state.dialect.one_of("batch", batches)
        rows = self.db.execute(
            "UPDATE run_batches SET lease_until = now() + make_interval(secs => ?) "
            f"WHERE run_id = ? AND holder = ? AND {which} AND NOT done RETURNING batch",
            (lease.total_seconds(), run_id, holder, *numbers),
        ).fetchall()
        self._seen(run_id)
        return {row[0] for row in rows}

    def _seen(self, run_id: int) -> None:
        self.db.execute("UPDATE shared_runs SET seen_at = now() WHERE run_id = ?", (run_id,))

    def batch(self, run_id: int, batch: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT data FROM run_subscribers WHERE run_id = ? AND batch = ? ORDER BY position",
            (run_id, batch),
        )
        return [json.loads(row[0]) for row in rows]

    def finished_in_run(self, run_id: int, subscribers: Sequence[str]) -> dict[str, str]:
        """Subscribers of a taken-over batch whose delivery this run already recorded."""
        who, addresses = self.state.dialect.one_of("subscriber", subscribers)
        rows = self.db.execute(
            f"SELECT subscriber, status FROM deliveries WHERE {who} AND run_id = ? "
            "AND status IN ('sent', 'failed')",
            (*addresses, run_id),
        )
        return {row[0]: row[1] for row in rows}

    def complete(self, run_id: int, batch: int, holder: str, counts: dict[str, int]) -> bool:
        row = self.db.execute(
            "UPDATE run_batches SET done = true, sent = ?, failed = ?, skipped = ? "
            "WHERE run_id = ? AND batch = ? AND holder = ? AND NOT done RETURNING batch",
            (counts["sent"], counts["failed"], counts["skipped"], run_id, batch, holder),
        ).fetchone()
        return row is not None

    def release(self, run_id: int, holder: str) -> None:
        """Give back every batch this process holds (it stops): others take them at once."""
        self.db.execute(
            "UPDATE run_batches SET lease_until = NULL WHERE run_id = ? AND holder = ? "
            "AND NOT done",
            (run_id, holder),
        )

    def progress(self, run_id: int) -> Progress:
        """The batches not done; `WRITING`, while the list is written, counts among them."""
        row = self.db.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE lease_until > now()), "
            "COALESCE(EXTRACT(EPOCH FROM MIN(lease_until) FILTER (WHERE lease_until > now()) "
            "- now()), 0), "
            "BOOL_OR(batch = ? AND lease_until > now()), BOOL_OR(batch = ?) "
            "FROM run_batches WHERE run_id = ? AND NOT done",
            (WRITING, WRITING, run_id),
        ).fetchone()
        writing = "live" if row[3] else ("gone" if row[4] else None)
        return Progress(int(row[0]), int(row[1]), float(row[2]), writing)

    def close_if_done(self, run_id: int, now: datetime) -> bool:
        """End the run when every batch is done, with the totals of every host; False while
        some batch is not."""
        with self.state.transaction(lock="runs"):
            row = self.db.execute(
                "UPDATE runs SET finished_at = ?, "
                "status = CASE WHEN t.failed > 0 THEN 'failed' ELSE 'ok' END, "
                f"{_TOTALS} "
                "WHERE id = ? AND status = 'running' AND NOT EXISTS "
                "(SELECT 1 FROM run_batches WHERE run_id = ? AND NOT done) RETURNING id",
                (stamp(now), run_id, run_id, run_id),
            ).fetchone()
            if row is not None:
                self._drop_list(run_id)
        return row is not None

    def close_aborted(self, run_id: int, now: datetime, note: str) -> bool:
        """End the run as aborted when no other host holds a live claim on it."""
        with self.state.transaction(lock="runs"):
            row = self.db.execute(
                "UPDATE runs SET finished_at = ?, status = 'aborted', note = ?, "
                f"{_TOTALS} "
                "WHERE id = ? AND status = 'running' AND NOT EXISTS (SELECT 1 FROM run_batches "
                "WHERE run_id = ? AND NOT done AND lease_until > now()) RETURNING id",
                (stamp(now), note, run_id, run_id, run_id),
            ).fetchone()
            if row is not None:
                self._drop_list(run_id)
        return row is not None

    def _drop_list(self, run_id: int) -> None:
        self.db.execute("DELETE FROM run_subscribers WHERE run_id = ?", (run_id,))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
