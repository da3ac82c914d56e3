"""Acceptances written to a PostgreSQL state without waiting for the server's answer
(`digest.state.acceptances`): a host killed the instant after a 250 loses none of them, a
connection never has more than one unanswered, and a broken connection leaves its rows to
the batch's own write."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from digest.state import AcceptanceWriter, Finished, State

from .conftest import postgres_state
from .postgres import PASSWORD

pytestmark = pytest.mark.postgresql

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def state(postgres_url: str, tmp_path: Path) -> Iterator[State]:
    with State(postgres_state(postgres_url, tmp_path / "state")) as opened:
        yield opened


def _pending(state: State, count: int) -> tuple[int, list[int]]:
    """A run with `count` pending deliveries; its id and theirs."""
    with state.transaction():
        run_id = state.start_run("send", NOW)
    planned = [(f"r{n}@example.org", f"<m{n}@example.org>", ["item"]) for n in range(count)]
    keys = state.begin_deliveries(run_id, planned, NOW, {})
    return run_id, [key for key, _ in keys]


def _statuses(url: str, ids: list[int]) -> list[str]:
    with psycopg.connect(url, password=PASSWORD, autocommit=True) as db:
        rows = db.execute(
            "SELECT status FROM deliveries WHERE id = ANY(%s) ORDER BY id", (ids,)
        ).fetchall()
    return [row[0] for row in rows]


def _locking(url: str, ids: list[int]) -> psycopg.Connection[Any]:
    """A transaction holding these rows: the server cannot apply an acceptance to them (or
    answer it) until it ends."""
    db = psycopg.connect(url, password=PASSWORD)
    db.execute("SELECT id FROM deliveries WHERE id = ANY(%s) FOR UPDATE", (ids,))
    return db


KILLED_AFTER_WRITING = """
import os, signal, sys, threading
from pathlib import Path
from digest.settings import PostgresState
from digest.state import AcceptanceWriter

url, run_id, ids = sys.argv[1], int(sys.argv[2]), [int(i) for i in sys.argv[3:]]
writer = AcceptanceWriter(PostgresState(url=url, local=Path(".")), run_id)
all_written = threading.Barrier(len(ids))


def sending_thread(key):  # alive until all have written, as a run's sending threads are
    writer.write(key, 1)
    all_written.wait()


threads = [threading.Thread(target=sending_thread, args=(key,)) for key in ids]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("written", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_acceptances_written_survive_a_kill_the_next_instant_though_unanswered(
    state: State, postgres_url: str
) -> None:
    run_id, ids = _pending(state, 4)
    lock = _locking(postgres_url, ids)  # the server holds each UPDATE unanswered
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", KILLED_AFTER_WRITING, postgres_url, str(run_id)]
            + [str(i) for i in ids],
            stdout=subprocess.PIPE,
            text=True,
        )
        # Each sending thread wrote its acceptance without waiting for the blocked server.
        out, _ = process.communicate(timeout=30)
        assert out.strip() == "written"
        assert process.returncode == -9
        assert _statuses(postgres_url, ids) == ["pending"] * 4
    finally:
        lock.rollback()  # the server applies what the dead process had written
        lock.close()
    deadline = time.monotonic() + 10
    while _statuses(postgres_url, ids) != ["sent"] * 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _statuses(postgres_url, ids) == ["sent"] * 4


def test_a_connection_writes_its_next_acceptance_only_once_the_previous_was_answered(
    state: State, postgres_url: str
) -> None:
    run_id, ids = _pending(state, 2)
    writer = AcceptanceWriter(state.target, run_id)  # type: ignore[arg-type]
    lock = _locking(postgres_url, ids[:1])
    done = threading.Event()

    def sending_thread() -> None:
        writer.write(ids[0], 1)  # handed over; its answer waits for the lock
        writer.write(ids[1], 1)  # waits for the first one's answer
        done.set()

    thread = threading.Thread(target=sending_thread)
    thread.start()
    try:
        assert not done.wait(0.5), "a second acceptance went out with the first unanswered"
        assert _statuses(postgres_url, ids) == ["pending", "pending"]
    finally:
        lock.rollback()
        lock.close()
    thread.join(10)
    assert done.is_set()
    assert writer.recorded(ids) == set(ids)
    assert writer.recorded(ids) == set()  # each is reported once
    writer.close()
    assert _statuses(postgres_url, ids) == ["sent", "sent"]


def test_a_broken_connection_leaves_its_acceptances_to_the_batchs_write(
    state: State, postgres_url: str
) -> None:
    run_id, ids = _pending(state, 2)
    writer = AcceptanceWriter(state.target, run_id)  # type: ignore[arg-type]
    writer.write(ids[0], 1)  # this thread, as one sending thread
    assert writer.recorded([ids[0]]) == {ids[0]}
    (pipe,) = writer.pipes.values()
    with psycopg.connect(postgres_url, password=PASSWORD, autocommit=True) as db:
        db.execute("SELECT pg_terminate_backend(%s)", (pipe.pg.backend_pid,))
    time.sleep(0.2)
    writer.write(ids[1], 1)  # no exception: the sending thread goes on
    assert writer.recorded([ids[1]]) == set()
    writer.close()
    assert _statuses(postgres_url, ids) == ["sent", "pending"]
    state.finish_deliveries([Finished(ids[1], None, 1)], NOW)  # what the journal does then
    assert _statuses(postgres_url, ids) == ["sent", "sent"]
