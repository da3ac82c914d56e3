"""The state on a PostgreSQL server: the setting, the errors a person must see, the schema and
its version, the connection's SQLite-style placeholders, and sends whose run several hosts
share (claims, leases, take-over)."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from digest.send import processes, shared

from .conftest import Project, SmtpServer, free_port, running_smtp_server

pytestmark = pytest.mark.postgresql


def test_send_on_postgresql_sends_once_and_history_shows_the_run(
    project: Project, postgres_url: str
) -> None:
    project.use_postgresql(postgres_url)
    first = project.run("send", "--json", check=True)
    sent = json.loads(first.stdout)["sent"]
    assert sent > 0
    assert len(project.maildir_messages()) == sent
    assert not (project.root / "postgresql:").exists()
    again = json.loads(project.run("send", "--json", check=True).stdout)
    assert again["sent"] == 0
    history = project.run("history", check=True).stdout
    assert "ok" in history
    rows = project.query("SELECT status, sent FROM runs ORDER BY id")
    assert rows[0] == ("ok", sent)


def _readers(project: Project, count: int) -> list[str]:
    regions = ["Central America", "Caribbean", "North America", "South America"]
    addresses = [f"reader{n}@example.org" for n in range(count)]
    project.subscribers(
        [{"email": a, "regions": [regions[n % 4]]} for n, a in enumerate(addresses)]
    )
    return addresses


def _send_a_large_run(project: Project, postgres_url: str, smtp_server: SmtpServer) -> None:
    """240 readers over two connections: two worker processes, each reader mailed once."""
    project.use_postgresql(postgres_url)
    addresses = _readers(project, 240)
    project.use_smtp(smtp_server, connections=2)
    result = project.run("send", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 240
    assert all(smtp_server.handler.count_for(a) == 1 for a in addresses)
    assert smtp_server.handler.sessions == 2  # both workers sent
    assert project.query("SELECT status, sent, failed FROM runs") == [("ok", 240, 0)]
    assert not multiprocessing.active_children()


def test_a_large_run_on_postgresql_is_shared_between_worker_processes(
    project: Project, postgres_url: str, smtp_server: SmtpServer
) -> None:
    _send_a_large_run(project, postgres_url, smtp_server)
    assert project.query("SELECT COUNT(*) FROM run_subscribers") == [(0,)]  # list dropped
    again = project.run("send", "--json")
    assert json.loads(again.stdout)["sent"] == 0


def test_workers_started_while_the_list_is_checked_claim_the_shared_run(
    project: Project,
    postgres_url: str,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "EARLY_BYTES", 0)  # any list starts them early

    def late(*args: object, **kwargs: object) -> None:
        raise AssertionError("workers started after the list was written")

    monkeypatch.setattr(shared, "deliver_in_processes", late)
    _send_a_large_run(project, postgres_url, smtp_server)


def _second_host(project: Project, postgres_url: str, server: SmtpServer) -> Project:
    """Another host: its own folder and its own relay, the same settings and database."""
    other = Project(project.root.parent / "host2")
    shutil.copytree(project.root, other.root)
    other.use_postgresql(postgres_url)
    other.use_smtp(server)
    return other


def _start(project: Project) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "send", "--json", "--config", str(project.config)],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_hosts_share_one_run_and_each_reader_gets_one_message(
    project: Project, postgres_url: str, smtp_server: SmtpServer
) -> None:
    project.use_postgresql(postgres_url)
    addresses = _readers(project, 400)
    project.use_smtp(smtp_server)
    smtp_server.handler.data_delay = 0.01  # a run long enough for the second host to join
    with running_smtp_server() as relay2:
        relay2.handler.data_delay = 0.01
        other = _second_host(project, postgres_url, relay2)
        first = _start(project)
        time.sleep(0.5)
        second = _start(other)
        out1, err1 = first.communicate(timeout=120)
        out2, err2 = second.communicate(timeout=120)
        assert first.returncode == 0 and second.returncode == 0, err1 + err2
        counts = {
            a: smtp_server.handler.count_for(a) + relay2.handler.count_for(a) for a in addresses
        }
        assert set(counts.values()) == {1}
        one, two = json.loads(out1), json.loads(out2)
        assert one["sent"] + two["sent"] == 400
        assert one["sent"] > 0 and two["sent"] > 0, "both hosts should have sent a share"
        assert len(smtp_server.handler.received) == one["sent"]
        assert len(relay2.handler.received) == two["sent"]
    runs = project.query("SELECT id, status, sent FROM runs")
    assert [(status, sent) for _, status, sent in runs] == [("ok", 400)]
    assert "joined run" in err1 + err2


def test_a_host_killed_mid_run_leaves_its_batches_to_another_with_one_duplicate_per_connection(
    project: Project, postgres_url: str, smtp_server: SmtpServer
) -> None:
    project.use_postgresql(postgres_url)
    addresses = _readers(project, 400)
    project.use_smtp(smtp_server, connections=2)
    taken = {"n": 0}
    reached = threading.Event()

    async def count(session: Any, envelope: Any) -> None:
        taken["n"] += 1
        if taken["n"] == 120:
            reached.set()

    smtp_server.handler.data_hook = count
    process = _start(project)
    try:
        assert reached.wait(120), "the send never got going"
        process.send_signal(signal.SIGKILL)  # its workers die with it
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    time.sleep(0.5)
    at_kill = len(smtp_server.handler.received)
    assert 0 < at_kill < 400
    assert project.query("SELECT status FROM runs") == [("running",)]
    # Each 250 was recorded as it came: only the two in flight (one per connection) may not.
    recorded = project.query("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'")[0][0]
    assert at_kill - 2 <= recorded <= at_kill

    with running_smtp_server() as relay2:
        other = _second_host(project, postgres_url, relay2)
        result = other.run("send", "--json", timeout=120)  # joins the open run, takes it over
        assert result.returncode == 0, result.stderr
        assert "joined run" in result.stderr
        counts = {
            a: smtp_server.handler.count_for(a) + relay2.handler.count_for(a) for a in addresses
        }
    assert min(counts.values()) == 1
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= 2, f"{duplicates} duplicates for 2 connections"
    assert project.query("SELECT status, sent FROM runs") == [("ok", 400)]
    statuses = project.query("SELECT DISTINCT status FROM deliveries")
    assert statuses == [("sent",)]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("postgresql://digest:secret@db.example.org/digest", "holds a password"),
        ("postgresql://db.example.org", "the database's name is missing"),
        ("postgresql:digest", "the host is missing"),
        ("mysql://digest@db.example.org/digest", "mysql: is not a state"),
        ("postgresql://digest@db.example.org:99999/digest", "not a valid URL"),
    ],
)
def test_a_bad_state_url_is_a_settings_error_and_makes_no_folder(
    project: Project, value: str, said: str
) -> None:
    project.settings(state=value)
    result = project.run("send")
    assert result.returncode == 2, result.stderr
    assert "digest.yaml:" in result.stderr and "setting 'state'" in result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert "secret" not in result.stderr  # a password is never shown back
    assert [
        p.name for p in project.root.iterdir() if p.name.startswith(("postgres", "mysql"))
    ] == []


def test_an_unreachable_server_and_wrong_credentials_are_one_clear_line(
    project: Project, postgres_url: str, postgres_cluster: Any
) -> None:
    project.settings(state=f"postgresql://digest@127.0.0.1:{free_port()}/nothing")
    result = project.run("send")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr.splitlines()[0]
    assert "cannot reach the PostgreSQL server at 127.0.0.1:" in error
    assert not (project.root / "postgresql:").exists()

    project.use_postgresql(postgres_url)
    result = project.run("send", env={"DIGEST_STATE_PASSWORD": "wrong"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr.splitlines()[0]
    assert "refused the login" in error and f"127.0.0.1:{postgres_cluster.port}" in error
    assert "wrong" not in result.stderr
    assert "$DIGEST_STATE_PASSWORD" in result.stderr  # the hint says where the password goes
    project.settings(state_password_env="MY_DB_PASSWORD")
    from .postgres import PASSWORD

    result = project.run("send", env={"MY_DB_PASSWORD": PASSWORD, "DIGEST_STATE_PASSWORD": "x"})
    assert result.returncode == 0, result.stderr


def test_two_schedulers_fire_a_due_send_once_and_both_work_on_it(
    project: Project, postgres_url: str, smtp_server: SmtpServer
) -> None:
    from digest.scheduler import Runner
    from digest.settings import load_settings

    from .test_scheduler import GUATEMALA, FakeClock, local

    project.use_postgresql(postgres_url)
    project.settings(schedule={"cron": "0 8 * * mon", "timezone": "America/Guatemala"})
    addresses = _readers(project, 150)
    project.use_smtp(smtp_server, timeout=60)
    smtp_server.handler.data_delay = 0.01
    clock = FakeClock(local(GUATEMALA, 2026, 3, 2, 8, 1))
    with running_smtp_server() as relay2:
        relay2.handler.data_delay = 0.01
        other = _second_host(project, postgres_url, relay2)
        runners = [Runner(load_settings(p.config), clock=clock) for p in (project, other)]
        results: list[Any] = [None, None]

        def fire(n: int) -> None:
            results[n] = runners[n].send_due("default")

        threads = [threading.Thread(target=fire, args=(n,)) for n in range(2)]
        threads[0].start()
        time.sleep(0.3)
        threads[1].start()
        for thread in threads:
            thread.join(120)
        counts = {
            a: smtp_server.handler.count_for(a) + relay2.handler.count_for(a) for a in addresses
        }
    assert set(counts.values()) == {1}
    assert results[0].status == "sent" and results[1].status in ("sent", "already-sent")
    runs = project.query("SELECT due_at, status, sent FROM runs WHERE kind = 'scheduled'")
    assert runs == [("default@2026-03-02T14:00:00Z", "ok", 150)]
    assert Runner(load_settings(other.config), clock=clock).send_due("default").status == (
        "already-sent"
    )


def test_the_state_moves_to_postgresql_and_back_and_a_send_after_repeats_nothing(
    project: Project, postgres_url: str
) -> None:
    from digest.state import BounceRecords, State, WebChanges

    from .test_web_overrides import NOW

    first = json.loads(project.run("send", "--json", check=True).stdout)
    assert first["sent"] == 7
    with State(project.state) as state:
        WebChanges(state).unsubscribe("ana@example.org", "one-click", NOW)
        with state.transaction():
            BounceRecords(state).suppress("newsroom@example.org", "hard bounce 5.1.1", NOW, None)
        secret = state.get_meta("token_secret")

    moved = project.run("state", "migrate", "--to", postgres_url)
    assert moved.returncode == 0, moved.stderr
    assert "7 deliveries" in moved.stdout and f"state: {postgres_url}" in moved.stdout
    again = project.run("state", "migrate", "--to", postgres_url)
    assert again.returncode == 2 and "needs an empty one" in again.stderr

    project.use_postgresql(postgres_url)
    assert project.query("SELECT value FROM meta WHERE key = 'token_secret'") == [(secret,)]
    assert project.query("SELECT action, email FROM suppression_journal") == [
        ("unsubscribe", "ana@example.org")
    ]
    after = json.loads(project.run("send", "--json", check=True).stdout)
    assert after["sent"] == 0 and after["subscribers_total"] == 5  # two are held back
    listed = json.loads(project.run("subscribers", "--all", "--json", check=True).stdout)
    statuses = {s["email"]: s["status"] for s in listed}
    assert statuses["ana@example.org"] == "unsubscribed"
    assert statuses["newsroom@example.org"] == "suppressed"
    run_id = project.query("SELECT MAX(id) FROM runs")[0][0]
    assert run_id == 2  # the identity counter continued after the copied id 1

    back = project.root / "back" / "state.db"
    result = project.run("state", "migrate", "--to", str(back))
    assert result.returncode == 0, result.stderr
    project.postgres_url = None
    project.settings(state=str(back))
    final = json.loads(project.run("send", "--json", check=True).stdout)
    assert final["sent"] == 0
    journal = (back.parent / "state.suppressions.txt").read_text()
    assert "\tunsubscribe\tana@example.org\tone-click" in journal


def test_a_lapsed_lease_is_taken_over_and_a_live_one_is_not(
    postgres_url: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from digest.send.claims import Claims
    from digest.state import SharedRuns, State

    from .conftest import postgres_state

    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    rows = [json.dumps({"email": f"r{n}@example.org", "name": ""}) for n in range(6)]
    with State(postgres_state(postgres_url, tmp_path / "state")) as state:
        runs = SharedRuns(state)
        with state.transaction(lock="runs"):
            run_id = state.start_run("manual", now)
            runs.publish(run_id, "sig", 6, 3, ("writer:1", timedelta(seconds=30)))
        runs.add(run_id, rows, 0, 3, timedelta(seconds=30))
        runs.written(run_id)
        # Another host holds batch 0 for 1 s, then dies; batch 1 is free.
        held = runs.claim(run_id, "elsewhere:1", timedelta(seconds=1))
        assert held is not None and (held.batch, held.taken_over) == (0, False)
        mine = Claims(state, run_id, "here:2", timedelta(seconds=30))
        first = [s.email for s in mine]
        assert first == ["r3@example.org", "r4@example.org", "r5@example.org"]
        assert runs.progress(run_id).held == 2  # its, live; mine
        time.sleep(1.2)
        taken = [s.email for s in Claims(state, run_id, "here:2", timedelta(seconds=30))]
        assert taken == ["r0@example.org", "r1@example.org", "r2@example.org"]
        # The host that lost its lease can no longer renew or complete batch 0.
        assert runs.renew(run_id, "elsewhere:1", [0], timedelta(seconds=1)) == set()
        counts = {"sent": 3, "failed": 0, "skipped": 0}
        assert not runs.complete(run_id, 0, "elsewhere:1", counts)
        assert runs.complete(run_id, 0, "here:2", counts)


def test_batches_are_claimed_as_the_list_is_written_and_a_stopped_writer_ends_the_run(
    postgres_url: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from digest.send.claims import Claims
    from digest.state import SharedRuns, State

    from .conftest import postgres_state

    lease = timedelta(seconds=30)
    rows = [json.dumps({"email": f"r{n}@example.org", "name": ""}) for n in range(9)]
    emails = [f"r{n}@example.org" for n in range(9)]
    target = postgres_state(postgres_url, tmp_path / "state")
    with State(target) as state:
        runs = SharedRuns(state)
        for run in range(2):
            with state.transaction(lock="runs"):
                run_id = state.start_run("manual", datetime(2026, 11, 30, 12, run, tzinfo=UTC))
                runs.publish(run_id, f"sig{run}", 9, 3, ("writer:1", lease))
            runs.add(run_id, rows[:3], 0, 3, lease)
            assert runs.writing(run_id) == "live" and runs.progress(run_id).undone == 2

            def write_the_rest(run_id: int = run_id, stops: bool = run == 1) -> None:
                with State(target) as writer:
                    time.sleep(0.3)
                    if stops:  # the writer stops after its first batch
                        SharedRuns(writer).stopped_writing(run_id)
                        return
                    SharedRuns(writer).add(run_id, rows[3:6], 3, 3, lease)
                    time.sleep(0.3)
                    SharedRuns(writer).add(run_id, rows[6:], 6, 3, lease)
                    SharedRuns(writer).written(run_id)

            late = threading.Thread(target=write_the_rest)
            late.start()
            got = [s.email for s in Claims(state, run_id, "here:2", lease)]  # waits for more
            late.join()
            if run == 0:
                assert got == emails and runs.writing(run_id) is None
            else:
                assert got == emails[:3]
                assert runs.writing(run_id) == "gone" and runs.progress(run_id).writing == "gone"


def test_a_list_writer_that_fails_stops_the_run_and_the_next_send_sends_the_rest(
    project: Project,
    postgres_url: str,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from digest.state import SharedRuns

    written = SharedRuns.add

    def add_once(self: SharedRuns, run_id: int, rows: Any, first: int, *rest: Any) -> None:
        if first > 0:
            raise OSError("the database went away")
        written(self, run_id, rows, first, *rest)

    monkeypatch.setattr(SharedRuns, "add", add_once)
    project.use_postgresql(postgres_url)
    addresses = _readers(project, 240)  # batches of 20: the first written, then the failure
    project.use_smtp(smtp_server, connections=1)
    result = project.run("send", "--json")
    assert result.returncode == 1
    assert "writing the list of run 1 failed: the database went away" in result.stderr
    assert json.loads(result.stdout)["sent"] == 20
    assert project.query("SELECT status FROM runs") == [("aborted",)]
    monkeypatch.setattr(SharedRuns, "add", written)
    again = project.run("send", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["sent"] == 220
    assert all(smtp_server.handler.count_for(a) == 1 for a in addresses)


def test_a_database_restored_from_an_older_backup_still_keeps_an_unsubscribe(
    project: Project, postgres_url: str
) -> None:
    from digest.state import State, WebChanges

    from .test_web_overrides import NOW

    project.use_postgresql(postgres_url)
    project.run("send", check=True)
    with State(project.state_location) as state:
        WebChanges(state).unsubscribe("ana@example.org", "one-click", NOW)
    assert (
        "\tunsubscribe\tana@example.org\t"
        in (project.root / ".digest" / "state.suppressions.txt").read_text()
    )
    # The restored database knows nothing of it (it predates the unsubscribe).
    with State(project.state_location) as state, state.transaction():
        state.db.execute("DELETE FROM web_subscribers")
        state.db.execute("DELETE FROM web_events")
        state.db.execute("DELETE FROM suppression_journal")
        state.db.execute("DELETE FROM deliveries")
    result = json.loads(project.run("send", "--json", check=True).stdout)
    assert "ana@example.org" not in {s["email"] for s in result["subscribers"]}
    assert result["sent"] == 6
    # This host's line is back in the database, for every other host.
    assert project.query("SELECT action, email FROM suppression_journal") == [
        ("unsubscribe", "ana@example.org")
    ]


def test_an_unsubscribe_through_one_web_host_is_seen_by_a_send_from_another(
    project: Project, postgres_url: str, smtp_server: SmtpServer
) -> None:
    from .test_web import SECRET, Client, start_server, token

    project.use_postgresql(postgres_url)
    with running_smtp_server() as relay2:
        other = _second_host(project, postgres_url, relay2)
        server = start_server(project)  # host 1 serves the web
        try:
            link = server.url("/unsubscribe", token=token("unsubscribe", "ana@example.org"))
            reply = Client(server).post(link, {"List-Unsubscribe": "One-Click"})
            assert reply.status == 200 and "You are unsubscribed" in reply.text
        finally:
            server.stop()
        result = other.run("send", "--json", env={"DIGEST_TOKEN_SECRET": SECRET}, check=True)
        sent = {s["email"] for s in json.loads(result.stdout)["subscribers"]}
        assert "ana@example.org" not in sent and len(sent) == 6
        assert relay2.handler.count_for("ana@example.org") == 0


def test_placeholders_become_psycopgs_outside_literals() -> None:
    from digest.state.postgres import placeholders

    assert placeholders("SELECT ? , :name, '?:x%', x::text, 5 % 2") == (
        "SELECT %s , %(name)s, '?:x%%', x::text, 5 %% 2"
    )


def test_a_database_is_made_at_the_latest_version_and_a_newer_one_is_refused(
    postgres_url: str, tmp_path: Path
) -> None:
    from digest.errors import StateError
    from digest.state import State, postgres
    from digest.state.schema import LATEST

    from .conftest import postgres_state

    location = postgres_state(postgres_url, tmp_path / "state")
    with State(location) as state:
        assert tuple(state.db.execute("SELECT version FROM schema_version").fetchone()) == (LATEST,)
        assert {"runs", "deliveries", "run_batches", "suppression_journal"} <= state.dialect.tables(
            state.db
        )
        state.db.execute("UPDATE schema_version SET version = ?", (LATEST + 1,))
    from digest import caches

    caches.clear()  # a new process: nothing known of this database
    postgres.close_idle()
    with pytest.raises(StateError, match="written by a newer digest"):
        State(location)


def test_a_database_of_version_6_gets_migrations_8_and_9(postgres_url: str, tmp_path: Path) -> None:
    """The first PostgreSQL states were made at version 6: issue 20's and 21's columns are
    added there too, and links sent before are noted as readable ones."""
    from digest import caches
    from digest.state import State, postgres
    from digest.state.schema import LATEST, OPAQUE_LINKS_SINCE

    from .conftest import postgres_state

    location = postgres_state(postgres_url, tmp_path / "state")
    with State(location) as state:
        state.db.execute("ALTER TABLE deliveries DROP COLUMN profile, DROP COLUMN more_ids")
        state.db.execute("UPDATE schema_version SET version = 6")
        state.db.execute("INSERT INTO runs(kind, started_at) VALUES ('send', '2026-11-01')")
        state.db.execute(
            "INSERT INTO deliveries(run_id, subscriber, message_id, status, item_ids, "
            "created_at, updated_at) SELECT id, 'a@example.org', '<m@x>', 'sent', '[]', "
            "'2026-11-01', '2026-11-01' FROM runs"
        )
    caches.clear()  # a new process: nothing known of this database
    postgres.close_idle()
    with State(location) as state:
        assert tuple(state.db.execute("SELECT version FROM schema_version").fetchone()) == (LATEST,)
        assert state.db.execute("SELECT profile, more_ids FROM deliveries").fetchall() == [
            (None, None)
        ]
        assert state.get_meta(OPAQUE_LINKS_SINCE) is not None
        assert state.opaque_links_since() is not None
