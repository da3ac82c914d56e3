"""The bounce tables in the real SQLite state: the migration of a version-4 file, the
suppression journal keeping a suppressed address out when the state is lost, and the
recorder's once-only rule when a second process records the same mail."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digest.bounces import BounceRecorder, Incoming, Policy, classify, fingerprint
from digest.state import BounceRecords, State, suppressions
from digest.state.schema import LATEST

from .bounce_mail import bounce_mail

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def _state_with_a_delivery(path: Any) -> None:
    with State(path) as state:
        run = state.start_run("manual", NOW)
        state.begin_deliveries(run, [("ana@example.org", "<m1@example.org>", ["i1"])], NOW, {})


def test_a_version_4_state_gets_the_bounce_tables(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _state_with_a_delivery(path)
    db = sqlite3.connect(path)
    for table in ("bounce_mails", "bounce_events", "suppressions"):
        db.execute(f"DROP TABLE {table}")
    db.execute("DROP INDEX deliveries_by_message_id")
    db.execute("PRAGMA user_version = 4")
    db.commit()
    db.close()
    with State(path) as state:
        assert state.db.execute("PRAGMA user_version").fetchone()[0] == LATEST >= 6
        records = BounceRecords(state)
        assert records.present
        assert records.delivery_with_message_id(["<m1@example.org>"]) == (1, "ana@example.org")
        plan = state.db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM deliveries WHERE message_id = 'x'"
        ).fetchall()
        assert "deliveries_by_message_id" in str([tuple(r) for r in plan])


def test_a_lost_state_still_keeps_a_suppressed_address_out(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _state_with_a_delivery(path)
    data = bounce_mail("postfix/remote-user-unknown.eml", recipient="ana@example.org")
    with State(path) as state:
        recorder = BounceRecorder(state, None, b"s", Policy(), lambda: NOW)
        [result] = recorder.record([Incoming("1", fingerprint(data), classify(data))])
        assert result.action == "suppressed"
    journal = suppressions.journal_path(path)
    assert suppressions.suppressed(journal) == {"ana@example.org"}
    path.unlink()  # lost; a fresh state knows nothing, the journal still does
    with State(path) as state:
        assert BounceRecords(state).suppression("ana@example.org") is None
        assert BounceRecords(state).unsuppress("Ana@Example.org", "staff", NOW)
    assert suppressions.suppressed(journal) == frozenset()


def test_two_recorders_with_the_same_mail_record_it_once(state_location: Any) -> None:
    path = state_location
    _state_with_a_delivery(path)
    data = bounce_mail("postfix/remote-mailbox-full.eml", recipient="ana@example.org")
    mail = Incoming("1", fingerprint(data), classify(data))
    with State(path) as first, State(path) as second:
        one = BounceRecorder(first, None, b"s", Policy(), lambda: NOW)
        two = BounceRecorder(second, None, b"s", Policy(), lambda: NOW)
        [a] = one.record([mail])
        [b] = two.record([mail])
    assert (a.action, a.duplicate, b.duplicate) == ("counted", False, True)
    with State(path) as state:
        assert tuple(state.db.execute("SELECT COUNT(*) FROM bounce_events").fetchone()) == (1,)
