"""The state on its own, on both backends (SQLite, PostgreSQL): what a subscriber was sent, and
state files from older versions."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from digest.state import Finished, State
from digest.state.schema import LATEST

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def history(state: State, subscriber: str, days: int) -> tuple[set[str], datetime | None]:
    return state.sent_histories([subscriber], timedelta(days=days))[subscriber]


def deliver(state: State, subscriber: str, items: list[str], at: datetime, ok: bool = True) -> int:
    run = state.start_run("manual", at)
    [(key, _)] = state.begin_deliveries(run, [(subscriber, f"<{at}@x>", items)], at, {})
    state.finish_deliveries([Finished(key, None if ok else "550 no", 1)], at)
    return key


def test_history_is_the_items_of_recent_sent_messages(state_location: Any) -> None:
    with State(state_location) as state:
        assert history(state, "ana@example.org", 14) == (set(), None)
        deliver(state, "ana@example.org", ["a", "b"], T0)
        deliver(state, "ana@example.org", ["c"], T0 + timedelta(days=10))
        deliver(state, "ana@example.org", ["x"], T0 + timedelta(days=11), ok=False)
        deliver(state, "bob@example.org", ["e"], T0 + timedelta(days=12))
        deliver(state, "ana@example.org", ["d"], T0 + timedelta(days=20))

        sent, last = history(state, "ana@example.org", 14)
        assert (sent, last) == ({"c", "d"}, T0 + timedelta(days=20))
        sent, _ = history(state, "ana@example.org", 20)
        assert sent == {"a", "b", "c", "d"}
        assert state.sent_item_ids("ana@example.org") == {"a", "b", "c", "d"}
        assert state.sent_item_ids("bob@example.org") == {"e"}


def test_a_state_file_from_before_version_1_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:  # the schema as version 0 wrote it, with one sent digest
        db.executescript(
            """
            CREATE TABLE runs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL,
                started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL DEFAULT 'running',
                sent INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
                skipped INTEGER NOT NULL DEFAULT 0, due_at TEXT, note TEXT);
            CREATE TABLE deliveries (id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runs(id), subscriber TEXT NOT NULL,
                message_id TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
                item_ids TEXT NOT NULL, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
            CREATE INDEX deliveries_by_subscriber ON deliveries(subscriber, status);
            CREATE TABLE sent_items (subscriber TEXT NOT NULL, item_id TEXT NOT NULL,
                delivery_id INTEGER NOT NULL REFERENCES deliveries(id), sent_at TEXT NOT NULL,
                PRIMARY KEY (subscriber, item_id)) WITHOUT ROWID;
            INSERT INTO runs(id, kind, started_at, status) VALUES (1, 'manual', '2026-01-05', 'ok');
            """
        )
        at = "2026-01-05T08:00:00.000000Z"
        db.execute(
            "INSERT INTO deliveries VALUES (1, 1, 'ana@example.org', '<m@x>', 'sent', ?, NULL, 1, "
            "?, ?)",
            (json.dumps(["a", "b"]), at, at),
        )
        db.executemany(
            "INSERT INTO sent_items VALUES ('ana@example.org', ?, 1, ?)", [("a", at), ("b", at)]
        )
    db.close()

    with State(path) as state:
        assert history(state, "ana@example.org", 14) == ({"a", "b"}, T0)
        tables = {r[0] for r in state.db.execute("SELECT name FROM sqlite_master")}
        assert "sent_items" not in tables and "deliveries_by_subscriber" not in tables
        assert {"deliveries_of_subscriber", "deliveries_unfinished", "sources"} <= tables
        assert state.db.execute("PRAGMA user_version").fetchone()[0] == LATEST
        columns = {r[1] for r in state.db.execute("PRAGMA table_info(deliveries)")}
        assert "resent" in columns  # version 2's rebuilt table kept the old rows
    with State(path) as state:  # opening again changes nothing
        assert state.sent_item_ids("ana@example.org") == {"a", "b"}
