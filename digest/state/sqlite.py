"""The state: items seen, delivery attempts, what each subscriber was sent, runs, secrets; in a
SQLite file (the default) or a PostgreSQL database that several hosts share (`state:
postgresql://...`). The methods are written once for both (`dialect` holds what differs).

Exactly once: a delivery row is written as `pending` (with its Message-ID and items) before the
message is handed to the server, and turned `sent` only after the server accepted it. A crash
between the two leaves a `pending` row; the next run resends that same message (same items, same
Message-ID), so a receiving system that already has it can drop the duplicate. What a subscriber
was sent is the items of their `sent` deliveries: one row per message, not one per item.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..caches import register_mapping
from ..clock import parse_stamp, stamp
from ..errors import StateError
from ..settings import PostgresState, StateLocation
from .dialect import PostgreSQL, SQLite, migrate_postgresql, postgresql_version
from .integrity import GuardedConnection, check_file, check_tables, translate
from .items import ItemsMixin
from .pending_rows import insert_pending
from .records import Delivery, Finished, Run
from .schema import LATEST, MIGRATIONS, OPAQUE_LINKS_SINCE, SCHEMA

# (subscriber, Message-ID, item ids, profile JSON or None, ids listed on the web JSON or None)
# (the last two may be left out)
Planned = tuple[str, str, Sequence[str], str | None, str | None] | tuple[str, str, Sequence[str]]

_REUSE = (
    "UPDATE deliveries SET run_id = ?, updated_at = ?, status = 'pending', "
    "resent = CASE WHEN status = 'uncertain' THEN 1 ELSE resent END WHERE id = ?"
)
_SUPERSEDE = "UPDATE deliveries SET status = 'failed', error = ?, updated_at = ? WHERE id = ?"

_migrated: set[str] = set()  # PostgreSQL states this process has brought up to date
register_mapping("digest.state.sqlite._migrated", _migrated)


class State(ItemsMixin):
    """One open state: a SQLite file, or a PostgreSQL database. Not shared between threads.

    `path` is the SQLite file, or for PostgreSQL where this host keeps its own files beside
    it (`PostgresState.local`); `name` is how messages name the state."""

    db: Any  # a GuardedConnection (sqlite3) or a postgres.PgConnection

    def __init__(self, target: StateLocation, readonly: bool = False) -> None:
        self.target = target
        self.readonly = readonly
        if isinstance(target, PostgresState):
            self._open_postgresql(target, readonly)
            return
        self.path = Path(target)
        self.name = str(self.path)
        self.dialect: type[SQLite] | type[PostgreSQL] = SQLite
        self.shared = False  # one host: runs are kept apart by the send lock
        existed = self.path.exists()
        check_file(self.path)  # an emptied or damaged state must never pass for a fresh one
        if readonly:
            self.db = self._connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True)
            check_tables(self.db, self.path)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"{self.path}: cannot create the state's folder: {exc.strerror}",
                hint="check that the folder can be written, or set 'state' in the settings",
            ) from exc
        self.db = self._connect(str(self.path))
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL under WAL survives any crash of this process (SIGKILL included); only a power
        # loss could lose the last commit, which the pending-row rule then resends.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        if existed:
            check_tables(self.db, self.path)
            self._migrate()
            self.db.executescript(SCHEMA)
        else:
            self.db.executescript(f"BEGIN;{SCHEMA}PRAGMA user_version = {LATEST};COMMIT;")

    def _open_postgresql(self, target: PostgresState, readonly: bool) -> None:
        self.path, self.name = Path(target.local), str(target)
        self.dialect, self.shared = PostgreSQL, True  # hosts share runs (`shared_runs`)
        from . import postgres  # psycopg and libpq (20 MB) only for a PostgreSQL state

        self.db = postgres.connect(target, readonly)
        try:
            if target.url in _migrated:  # checked and brought up to date by this process
                return
            version = postgresql_version(self.db)
            if version is not None and version > LATEST:
                raise StateError(
                    f"{target}: the state was written by a newer digest (schema {version}, "
                    f"this one knows {LATEST})",
                    hint="upgrade digest on this host to the version the others run",
                )
            if version is not None:
                check_tables(self.db, self.name)
            if readonly and version is None:
                raise StateError(f"{target}: the database holds no digest state yet")
            if not readonly and version != LATEST:
                migrate_postgresql(self.db)
                version = LATEST
            if version == LATEST:
                _migrated.add(target.url)
        except BaseException:
            self.db.close()
            raise

    def relax_durability(self) -> None:
        """For a send's bookkeeping: PostgreSQL confirms a commit before its WAL reaches the
        disk (`synchronous_commit = off`), as SQLite's WAL with synchronous=NORMAL does. A
        crash of the server itself (not of a host) can lose the last fraction of a second of
        records, which the pending-row rule then resends with their Message-IDs."""
        if self.shared:
            self.db.execute("SET synchronous_commit = off")
            self.db.relaxed = True

    def _connect(self, target: str, uri: bool = False) -> GuardedConnection:
        try:
            db = sqlite3.connect(
                target, uri=uri, timeout=30, isolation_level=None, factory=GuardedConnection
            )
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        db.path = self.path
        db.row_factory = sqlite3.Row
        return db

    def _migrate(self) -> None:
        """Bring a state file written by an older version up to date (each step idempotent)."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for target in sorted(v for v in MIGRATIONS if v > version):
            step = MIGRATIONS[target]
            try:
                if isinstance(step, str):
                    self.db.executescript(
                        f"BEGIN IMMEDIATE;{step}PRAGMA user_version = {target};COMMIT;"
                    )
                    continue
                self.db.execute("BEGIN IMMEDIATE")
                step(self.db)
                self.db.execute(f"PRAGMA user_version = {target}")
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def counts(self) -> dict[str, int]:
        """How many rows each of the main tables holds (for `digest check`)."""
        return {
            table: int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("items", "runs", "deliveries")
            if self.has_table(table)
        }

    def has_table(self, name: str) -> bool:
        return self.dialect.has_table(self.db, name)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self, lock: str | None = "state") -> Iterator[Any]:
        """One transaction. SQLite's take the file's write lock; PostgreSQL's take the
        advisory lock `lock` (None: none, for statements safe side by side)."""
        self.dialect.begin(self.db, lock)
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def peek_token_secret(self, env_name: str) -> bytes | None:
        """The token secret if one exists already; creates nothing."""
        from_env = os.environ.get(env_name)
        if from_env:
            return from_env.encode()
        stored = self.get_meta("token_secret")
        return stored.encode() if stored else None

    def token_secret(self, env_name: str) -> tuple[bytes, bool]:
        """The secret signing unsubscribe tokens: from the environment, else generated once and
        kept here. The flag says whether it came from the environment."""
        from_env = os.environ.get(env_name)
        if from_env:
            return from_env.encode(), True
        with self.transaction():
            stored = self.get_meta("token_secret")
            if stored is None:
                stored = secrets.token_hex(32)
                self.set_meta("token_secret", stored)
        return stored.encode(), False

    # -- runs ---------------------------------------------------------------------------------
    def start_run(self, kind: str, now: datetime, due_at: str | None = None) -> int:
        row = self.db.execute(
            "INSERT INTO runs(kind, started_at, due_at) VALUES (?, ?, ?) RETURNING id",
            (kind, stamp(now), due_at),
        ).fetchone()
        return int(row[0])

    def finish_run(
        self,
        run_id: int,
        now: datetime,
        status: str,
        sent: int,
        failed: int,
        skipped: int,
        note: str | None = None,
    ) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at = ?, status = ?, sent = ?, failed = ?, skipped = ?, "
            "note = ? WHERE id = ?",
            (stamp(now), status, sent, failed, skipped, note, run_id),
        )

    def runs(self, last: int = 10) -> list[Run]:
        rows = self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (last,)).fetchall()
        return [
            Run(
                id=r["id"],
                kind=r["kind"],
                started_at=parse_stamp(r["started_at"]),
                finished_at=parse_stamp(r["finished_at"]) if r["finished_at"] else None,
                status=r["status"],
                sent=r["sent"],
                failed=r["failed"],
                skipped=r["skipped"],
                due_at=r["due_at"],
                note=r["note"],
            )
            for r in rows
        ]

    def completed_due_times(self) -> set[str]:
        rows = self.db.execute(
            "SELECT due_at FROM runs WHERE due_at IS NOT NULL AND status IN ('ok', 'failed')"
        )
        return {r["due_at"] for r in rows}

    # -- deliveries ---------------------------------------------------------------------------
    def sent_item_ids(self, subscriber: str) -> set[str]:
        """Every item this subscriber was ever sent."""
        rows = self.db.execute(
            "SELECT item_ids, more_ids FROM deliveries WHERE subscriber = ? AND status = 'sent'",
            (subscriber,),
        )
        return {item for row in rows for item in _sent_ids(*row)}

    def sent_histories(
        self, subscribers: Sequence[str], horizon: timedelta
    ) -> dict[str, tuple[set[str], datetime | None]]:
        """For each subscriber: the items they were sent from `horizon` before their latest
        digest on (older messages hold no item that could be new again), and when that latest
        went out. One query for all of them."""
        histories: dict[str, tuple[set[str], datetime | None]] = {
            s: (set(), None) for s in subscribers
        }
        who, parameters = self.dialect.one_of("subscriber", list(histories))
        rows = self.db.execute(
            "SELECT subscriber, updated_at, item_ids, more_ids FROM deliveries "
            f"WHERE {who} AND status = 'sent' ORDER BY subscriber, id DESC",
            parameters,
        )
        oldest = ""
        for subscriber, updated_at, item_ids, more_ids in rows:
            sent, last = histories[subscriber]
            if last is None:  # their latest message
                last = parse_stamp(updated_at)
                histories[subscriber] = (sent, last)
                oldest = stamp(last - horizon)
            elif updated_at < oldest:
                continue
            sent.update(_sent_ids(item_ids, more_ids))
        return histories

    def pending_delivery(self, subscriber: str) -> Delivery | None:
        return self.pending_deliveries([subscriber]).get(subscriber)

    def pending_deliveries(self, subscribers: Iterable[str] | None = None) -> dict[str, Delivery]:
        """The latest unfinished delivery of each subscriber that has one (usually none): a
        pending row a killed run left, or an uncertain one (no reply to its end came)."""
        query = "SELECT * FROM deliveries WHERE status IN ('pending', 'uncertain')"
        parameters: list[Any] = []
        if subscribers is not None:  # by subscriber (PostgreSQL keeps no index of unfinished rows)
            wanted = list(dict.fromkeys(subscribers))
            if not wanted:
                return {}
            who, parameters = self.dialect.one_of("subscriber", wanted)
            query += f" AND {who}"
        rows = self.db.execute(query + " ORDER BY id", parameters).fetchall()
        return {r["subscriber"]: _delivery(r) for r in rows}

    def begin_deliveries(
        self,
        run_id: int,
        planned: Sequence[Planned],
        now: datetime,
        pending: dict[str, Delivery],
        finished: Sequence[Finished] = (),
    ) -> list[tuple[int, bool]]:
        """Record attempts (subscriber, Message-ID, item ids, and the digest's profile and
        stories listed on the web, as JSON or None) as pending before they leave, in
        one transaction, so a crash can be recovered; outcomes of earlier ones (`finished`) are
        recorded in the same transaction. An unfinished row (from `pending`: what a killed run
        left, or an uncertain message) of the same message is reused, an uncertain one marked
        resent; one of a different message is superseded.
        Returns (delivery id, whether the row is new) for each."""
        ids: list[tuple[int, bool] | None] = []
        fresh: list[tuple[int, str, str, str, str, str]] = []
        changes: list[tuple[str, tuple[Any, ...]]] = []  # unfinished rows reused or superseded
        at = stamp(now)
        for subscriber, message_id, item_ids, *extra in planned:
            profile, more_ids = (*extra, None, None)[:2]
            existing = pending.pop(subscriber, None)
            if existing is not None and existing.message_id == message_id:
                changes.append((_REUSE, (run_id, at, existing.id)))
                ids.append((existing.id, False))
                continue
            if existing is not None:
                changes.append((_SUPERSEDE, ("superseded by a newer digest", at, existing.id)))
            ids.append(None)
            fresh.append(
                (run_id, subscriber, message_id, json.dumps(list(item_ids)), at, at)
                + (profile, more_ids)
            )
        # Each host records only its own subscribers: no lock. On PostgreSQL one INSERT alone
        # commits on its own, without a BEGIN and a COMMIT (two round trips) around it.
        alone = self.shared and not finished and not changes
        with contextlib.nullcontext() if alone else self.transaction(lock=None):
            self._finish(finished, at)
            for change in changes:
                self.db.execute(*change)
            new_ids = insert_pending(self.db, fresh, postgresql=self.shared)
        return [key if key is not None else (new_ids.pop(0), True) for key in ids]

    def mark_accepted(self, accepted: Sequence[tuple[int, int]]) -> int:
        """Deliveries a server accepted that a killed run had not recorded: sent now.
        Returns how many were still unfinished."""
        with self.transaction(lock=None):
            cursor = self.db.executemany(
                "UPDATE deliveries SET status = 'sent', error = NULL, attempts = attempts + ? "
                "WHERE id = ? AND status IN ('pending', 'uncertain')",
                [(attempts, delivery_id) for delivery_id, attempts in accepted],
            )
        return cursor.rowcount

    def forget_deliveries(self, delivery_ids: Sequence[int]) -> None:
        """Drop pending rows of messages that never left (a run stopped before handing them
        over), so the next run builds those digests afresh."""
        with self.transaction(lock=None):
            self.db.executemany(
                "DELETE FROM deliveries WHERE id = ? AND status = 'pending'",
                [(i,) for i in delivery_ids],
            )

    def finish_deliveries(self, finished: Sequence[Finished], now: datetime) -> None:
        """Record outcomes in one transaction. A message the server accepted turns `sent` (its
        items now count as sent to the subscriber); a failure keeps the server's reply."""
        with self.transaction(lock=None):
            self._finish(finished, stamp(now))

    def _finish(self, finished: Sequence[Finished], at: str) -> None:
        """Accepted: sent. Refused: failed. No reply to its end: uncertain, and a later run
        resends it once; if that one goes unanswered too it counts as sent, never a third."""
        if not finished:
            return
        self.db.executemany(
            "UPDATE deliveries SET status = CASE WHEN :status = 'uncertain' AND resent = 1 "
            "THEN 'sent' ELSE :status END, error = :error, attempts = attempts + :attempts, "
            "updated_at = :at WHERE id = :id",
            [
                {
                    "status": f.status,
                    "error": f.error,
                    "attempts": f.attempts,
                    "at": at,
                    "id": f.delivery_id,
                }
                for f in finished
            ],
        )

    def delivery_of_message(self, subscriber: str, key: str) -> Delivery | None:
        """The latest delivery to this subscriber of the digest whose Message-ID is
        `<digest.KEY@...>` (for `digest serve`'s view of it), whatever became of it."""
        row = self.db.execute(
            "SELECT * FROM deliveries WHERE subscriber = ? AND message_id LIKE ? "
            "AND status != 'failed' ORDER BY id DESC LIMIT 1",
            (subscriber, f"<digest.{key}@%"),
        ).fetchone()
        return _delivery(row) if row else None

    def opaque_links_since(self) -> datetime | None:
        """When this state began to send opaque links, if it sent readable ones before."""
        value = self.get_meta(OPAQUE_LINKS_SINCE)
        return parse_stamp(value) if value else None

    def deliveries(
        self, run_id: int | None = None, subscriber: str | None = None
    ) -> list[Delivery]:
        query, args = "SELECT * FROM deliveries WHERE 1=1", []
        if run_id is not None:
            query += " AND run_id = ?"
            args.append(run_id)
        if subscriber is not None:
            query += " AND subscriber = ?"
            args.append(subscriber)
        return [_delivery(r) for r in self.db.execute(query + " ORDER BY id", args)]


def _sent_ids(item_ids: str, more_ids: str | None) -> list[str]:
    return json.loads(item_ids) + (json.loads(more_ids) if more_ids else [])


def _delivery(row: Any) -> Delivery:
    keys = row.keys()
    profile = row["profile"] if "profile" in keys else None
    more_ids = row["more_ids"] if "more_ids" in keys else None
    return Delivery(
        id=row["id"],
        run_id=row["run_id"],
        subscriber=row["subscriber"],
        message_id=row["message_id"],
        status=row["status"],
        item_ids=tuple(json.loads(row["item_ids"])),
        error=row["error"],
        attempts=row["attempts"],
        created_at=parse_stamp(row["created_at"]),
        updated_at=parse_stamp(row["updated_at"]),
        profile=json.loads(profile) if profile else None,
        more_ids=tuple(json.loads(more_ids)) if more_ids else (),
    )


def exists(target: StateLocation) -> bool:
    """Whether a run made the state already (a SQLite file, or a database with its tables)."""
    if not isinstance(target, PostgresState):
        return Path(target).is_file()
    from . import postgres

    db = postgres.connect(target, readonly=True)
    try:
        return postgresql_version(db) is not None
    finally:
        db.close()


@contextlib.contextmanager
def reading(target: StateLocation) -> Iterator[State | None]:
    """The state opened read-only for the block, or None before the first run made it.
    Previews, checks and a send being checked must never write the state, nor create it."""
    state = State(target, readonly=True) if exists(target) else None
    try:
        yield state
    finally:
        if state is not None:
            state.close()
