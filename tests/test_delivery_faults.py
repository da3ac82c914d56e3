"""Delivery that survives faults, against a real aiosmtpd server that injects them.

Each test counts what arrived at the server per address and reads what the state says.
"""

from __future__ import annotations

import asyncio
import functools
import json
import multiprocessing
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from digest.delivery import RateLimit
from digest.send.journal import acceptance_log_path

from .conftest import Project, RecordingHandler, SmtpServer, free_port
from .test_send import SHIPPED


def deliveries(project: Project) -> list[dict]:
    with sqlite3.connect(project.state) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM deliveries ORDER BY id")]


def assert_each_once(server: SmtpServer) -> None:
    assert {a: server.handler.count_for(a) for a in SHIPPED} == {a: 1 for a in SHIPPED}


@pytest.mark.parametrize(
    "script",
    [
        ["451 4.3.0 try again later", "451 4.3.0 try again later"],
        ["421 4.3.2 service shutting down"],
    ],
    ids=["451-twice", "421"],  # a connection dropped at the end: tests/test_smtp_faults.py
)
def test_temporary_failures_are_retried_and_each_subscriber_gets_one(
    project: Project, smtp_server: SmtpServer, script: list[str]
) -> None:
    project.use_smtp(smtp_server)
    smtp_server.handler.data_script = list(script)
    result = project.run("send")
    assert result.returncode == 0, result.stderr
    assert_each_once(smtp_server)
    rows = deliveries(project)
    assert [r["status"] for r in rows] == ["sent"] * 7
    assert rows[0]["attempts"] == len(script) + 1
    assert project.sent_items()["newsroom@example.org"] == 10


def test_a_slow_server_past_the_timeout_is_retried(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server, timeout=1)
    slow = {"left": 1}

    async def hook(session, envelope):
        if slow["left"]:
            slow["left"] -= 1
            await asyncio.sleep(2.5)  # past the client's timeout; the client has gone
            return "451 4.4.2 too slow"
        return None

    smtp_server.handler.data_hook = hook
    result = project.run("send")
    assert result.returncode == 0, result.stderr
    assert_each_once(smtp_server)
    assert deliveries(project)[0]["attempts"] == 2


def test_retries_run_out_then_the_next_run_delivers(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server, retries=2)
    smtp_server.handler.data_script = ["451 4.3.0 greylisted"] * 3
    result = project.run("send")
    assert result.returncode == 1
    first = deliveries(project)[0]  # the first one sent met the three 451s
    assert first["status"] == "failed" and "451 4.3.0 greylisted" in first["error"]
    assert first["subscriber"] in result.stderr and "451 4.3.0 greylisted" in result.stderr
    assert smtp_server.handler.count_for(first["subscriber"]) == 0
    assert project.run("send").returncode == 0
    assert_each_once(smtp_server)


def test_history_lists_runs_and_failures_with_the_servers_reply(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    smtp_server.handler.rcpt_replies["ana@example.org"] = "550 5.1.1 no such user"
    assert project.run("send").returncode == 1
    del smtp_server.handler.rcpt_replies["ana@example.org"]
    assert project.run("send").returncode == 0
    runs = json.loads(project.run("history", "--json").stdout)
    assert [(r["status"], r["sent"], r["failed"]) for r in runs] == [("ok", 1, 0), ("failed", 6, 1)]
    failed = next(d for d in runs[1]["deliveries"] if d["status"] == "failed")
    assert failed["subscriber"] == "ana@example.org" and "550 5.1.1 no such user" in failed["error"]
    table = project.run("history", "--last", "1")
    assert "Run 2" in table.stdout and "Run 1" not in table.stdout
    assert "ana@example.org" in table.stdout


class _Password:
    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"right"
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def login_server(project: Project) -> Iterator[SmtpServer]:
    """An SMTP server that wants the password "right", and the project pointed at it with the
    password taken from $TEST_SMTP_PASSWORD."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=_Password(), auth_require_tls=False
    )
    controller.start()
    project.use_smtp(
        SmtpServer("127.0.0.1", port, handler, controller),
        username="digest",
        password_env="TEST_SMTP_PASSWORD",
    )
    try:
        yield SmtpServer("127.0.0.1", port, handler, controller)
    finally:
        controller.stop()


def test_wrong_password_stops_the_run_with_one_clear_message(
    project: Project, login_server: SmtpServer
) -> None:
    result = project.run("send", env={"TEST_SMTP_PASSWORD": "wrong"})
    assert result.returncode == 2
    assert f"SMTP login to 127.0.0.1:{login_server.port} as 'digest' failed: 535" in result.stderr
    assert "TEST_SMTP_PASSWORD" in result.stderr
    assert login_server.handler.received == []
    assert project.sent_items() == {}
    result = project.run("send", env={"TEST_SMTP_PASSWORD": "right"})
    assert result.returncode == 0, result.stderr
    assert len(login_server.handler.received) == 7


def test_unreachable_server_stops_the_run(project: Project) -> None:
    port = free_port()
    project.settings(delivery={"method": "smtp", "smtp": {"host": "127.0.0.1", "port": port}})
    result = project.run("send")
    assert result.returncode == 1  # temporary: the next run or the scheduler tries again
    assert f"cannot reach SMTP server 127.0.0.1:{port}" in result.stderr
    assert "check delivery.smtp.host and port" in result.stderr
    assert project.sent_items() == {}
    assert all(r["status"] == "failed" for r in deliveries(project))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made once for the TLS tests."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_is_verified_and_used(
    project: Project, certificate: tuple[Path, Path], security: str
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = RecordingHandler()
    port = free_port()
    options = (
        {"tls_context": context, "require_starttls": True}
        if security == "starttls"
        else {"ssl_context": context}
    )
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        project.settings(
            delivery={
                "method": "smtp",
                "smtp": {
                    "host": "127.0.0.1",
                    "port": port,
                    "security": security,
                    "retry_backoff": 0.05,
                },
            }
        )
        untrusted = project.run("send")
        assert untrusted.returncode == 2
        assert f"TLS with SMTP server 127.0.0.1:{port} failed" in untrusted.stderr
        assert handler.received == []
        trusted = project.run("send", env={"SSL_CERT_FILE": str(cert)})
        assert trusted.returncode == 0, trusted.stderr
        assert len(handler.received) == 7
    finally:
        controller.stop()


def test_several_connections_deliver_each_digest_once(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server, connections=3)
    peers: set[tuple] = set()

    async def hook(session, envelope):
        peers.add(session.peer)
        await asyncio.sleep(0.2)  # keep each connection busy so the others are used
        return None

    smtp_server.handler.data_hook = hook
    result = project.run("send")
    assert result.returncode == 0, result.stderr
    assert_each_once(smtp_server)
    assert len(peers) == 3


def test_rate_limit_spaces_messages_at_the_strictest_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limit = RateLimit(per_second=10, per_minute=300, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limit.wait()
    assert slept == pytest.approx([0.2, 0.2, 0.2])  # 300/min is stricter than 10/s


def _blocking_hook(reached: threading.Event, record_first: bool, handler: RecordingHandler):
    """Accept two messages, then block on the third until the client is killed."""
    count = {"n": 0}

    async def hook(session, envelope):
        count["n"] += 1
        if count["n"] == 3:
            if record_first:  # the server takes the message but the client never hears 250
                handler.received.append(
                    type(handler.received[0])(
                        envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)
                    )
                )
            reached.set()
            await asyncio.sleep(30)
            return "451 4.3.0 client went away"
        return None

    return hook


def _start_blocked_send(
    project: Project, server: SmtpServer, server_takes_the_third: bool
) -> tuple[subprocess.Popen[str], threading.Event]:
    """`digest send` as a subprocess, held by the server at the third message."""
    project.use_smtp(server)
    reached = threading.Event()
    server.handler.data_hook = _blocking_hook(reached, server_takes_the_third, server.handler)
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "send", "--config", str(project.config)],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, reached


@pytest.mark.parametrize("server_took_it", [False, True], ids=["not-accepted", "ambiguous"])
def test_sigkill_mid_run_then_rerun_delivers_to_everyone_once(
    project: Project, smtp_server: SmtpServer, server_took_it: bool
) -> None:
    process, reached = _start_blocked_send(project, smtp_server, server_took_it)
    try:
        assert reached.wait(60), "the send never reached the third message"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    at_kill = deliveries(project)
    received_at_kill = {a: smtp_server.handler.count_for(a) for a in SHIPPED}
    # Never recorded as sent without the server having it; the one in flight (and the few
    # queued behind it) are pending.
    assert all(received_at_kill[r["subscriber"]] == 1 for r in at_kill if r["status"] == "sent")
    assert at_kill[2]["status"] == "pending"
    # The two the server accepted were written down the moment each 250 came, though the
    # state's batch was not: the acceptance log lists them.
    logged = acceptance_log_path(project.state).read_text().split()
    assert {int(i) for i in logged[0::2]} == {at_kill[0]["id"], at_kill[1]["id"]}
    in_flight, its_id = at_kill[2]["subscriber"], at_kill[2]["message_id"]
    smtp_server.handler.data_hook = None

    result = project.run("send")
    assert result.returncode == 0, result.stderr
    counts = {a: smtp_server.handler.count_for(a) for a in SHIPPED}
    # Everyone has theirs; a second copy only of the message in flight, and only where the
    # server took it before the kill: then with the same Message-ID.
    assert counts == {a: 1 + (a == in_flight and server_took_it) for a in SHIPPED}
    if server_took_it:
        ids = {m["Message-ID"] for m in smtp_server.handler.messages_for(in_flight)}
        assert ids == {its_id}
    assert all(r["status"] == "sent" for r in deliveries(project))
    assert set(project.sent_items()) == set(SHIPPED)
    assert acceptance_log_path(project.state).read_text() == ""  # folded into the state


def test_a_second_send_while_one_runs_exits_with_a_clear_message(
    project: Project, smtp_server: SmtpServer
) -> None:
    process, reached = _start_blocked_send(project, smtp_server, False)
    try:
        assert reached.wait(60)
        second = project.run("send")
        assert second.returncode == 1
        assert "another send is running" in second.stderr and "nothing was sent" in second.stderr
        assert len(smtp_server.handler.received) == 2
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    smtp_server.handler.data_hook = None
    deadline = time.monotonic() + 30
    while True:  # the lock is the OS's: it goes with the killed process
        result = project.run("send")
        if result.returncode != 1 or time.monotonic() > deadline:
            break
    assert result.returncode == 0, result.stderr
    assert_each_once(smtp_server)


def test_a_large_run_is_shared_between_worker_processes(
    project: Project, smtp_server: SmtpServer
) -> None:
    regions = ["Central America", "Caribbean", "North America", "South America"]
    project.subscribers(
        [
            {
                "email": f"reader{n}@example.org",
                "name": f"Reader {n}",
                "regions": [regions[n % 4]],
                "group_by": "topic" if n % 3 else "region",
            }
            for n in range(240)
        ]
    )
    project.use_smtp(smtp_server, connections=2)
    result = project.run("send", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sent"] == 240 and summary["failed"] == 0
    assert all(smtp_server.handler.count_for(f"reader{n}@example.org") == 1 for n in range(240))
    rows = deliveries(project)
    assert len(rows) == 240 and {r["status"] for r in rows} == {"sent"}
    assert len({r["run_id"] for r in rows}) == 1
    again = project.run("send", "--json")
    assert json.loads(again.stdout)["sent"] == 0
    assert len(smtp_server.handler.received) == 240


def _send_times(make_limit: Callable[..., RateLimit], workers: int, rounds: int) -> list[float]:
    """When each message goes if `workers`, each with its own limit, all ask at one moment,
    `rounds` times each: a message goes after the sleep its worker's limit asks for."""
    now, slept = 100.0, []
    limits = [make_limit(clock=lambda: now, sleep=slept.append) for _ in range(workers)]
    times: list[float] = []
    for _ in range(rounds):
        for limit in limits:
            slept.clear()
            limit.wait()
            times.append(now + sum(slept))
    return sorted(times)


def test_rate_limits_sharing_a_slot_keep_to_the_rate_together() -> None:
    """Worker processes' limits share one `multiprocessing.Value` (the run's `rate_slot`): two
    workers asking at once send in turn, at the rate. Apart, each takes the rate whole."""
    slot = multiprocessing.get_context("spawn").Value("d", 0.0)
    shared = _send_times(functools.partial(RateLimit, 40, None, shared=slot), 2, 3)
    assert shared == pytest.approx([100 + k / 40 for k in range(6)])
    apart = _send_times(functools.partial(RateLimit, 40, None), 2, 3)
    assert apart == pytest.approx([100 + k // 2 / 40 for k in range(6)])


def test_worker_processes_share_the_rate_limit_rather_than_each_taking_it_whole(
    project: Project, smtp_server: SmtpServer
) -> None:
    """End to end, the smallest run that is shared between worker processes (200
    subscribers): the rate holds for the run, not for each worker."""
    regions = ["Central America", "Caribbean", "North America", "South America"]
    project.subscribers(
        [{"email": f"r{n}@example.org", "regions": [regions[n % 4]]} for n in range(200)]
    )
    project.use_smtp(smtp_server, connections=2, max_per_second=100)
    arrivals: list[tuple[float, object]] = []  # when, and over which connection

    async def arrived(session: Any, envelope: object) -> None:
        arrivals.append((time.monotonic(), session.peer))

    smtp_server.handler.data_hook = arrived
    result = project.run("send", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 200
    assert len(arrivals) == 200
    # Both workers sent (each set of preferences goes to one of them), one connection each.
    by_worker = {peer: [at for at, p in arrivals if p == peer] for _, peer in arrivals}
    assert smtp_server.handler.sessions == 2 and len(by_worker) == 2
    # Together they kept to 100 a second: each taking the limit whole would have sent 200 in
    # one second. The workers start a moment apart (which can lengthen even that second), so
    # also: while both were sending, the two together sent 100 a second, not 200.
    assert arrivals[-1][0] - arrivals[0][0] >= (200 - 1) / 100 * 0.95
    start = max(times[0] for times in by_worker.values())
    end = min(times[-1] for times in by_worker.values())
    both = sum(start <= at <= end for at, _ in arrivals)
    assert both <= 100 * 1.3 * max(end - start, 0) + 3, (both, end - start)


def test_a_worker_process_stopped_by_a_wrong_password_stops_the_run(
    project: Project, login_server: SmtpServer
) -> None:
    project.subscribers([{"email": f"r{n}@example.org"} for n in range(220)])
    project.settings(delivery={"smtp": {"connections": 2}})
    result = project.run("send", env={"TEST_SMTP_PASSWORD": "wrong"})
    assert result.returncode == 2
    assert "SMTP login to" in result.stderr and "failed: 535" in result.stderr
    assert login_server.handler.received == [] and project.sent_items() == {}


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
def test_the_smtp_transaction_keeps_the_message_byte_for_byte(pipelining: bool) -> None:
    from digest.compose.mime import NoDotLines
    from digest.delivery import SMTPSender
    from digest.errors import PermanentDeliveryError
    from digest.settings import SmtpSettings

    handler = RecordingHandler(pipelining=pipelining)
    handler.rcpt_replies["gone@example.org"] = "550 5.1.1 no such user"
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        sender = SMTPSender(SmtpSettings(host="127.0.0.1", port=port, timeout=5))
        data = b"Subject: dots\r\n\r\n.starts with a dot\r\n..two\r\n.\r\nlast line"
        with pytest.raises(PermanentDeliveryError, match="550 5.1.1 no such user"):
            sender.send("digest@example.org", "gone@example.org", data)
        sender.send("digest@example.org", "ana@example.org", data)  # same connection, after RSET
        # Bytes marked as having no line that starts with a dot go as they are.
        undotted = NoDotLines(b"Subject: no dots\r\n\r\nend of line.\r\n=2E escaped\r\n")
        sender.send("digest@example.org", "ben@example.org", undotted)
        assert sender.conn is not None and sender.conn.has_extn("pipelining") is pipelining
        sender.close()
    finally:
        controller.stop()
    received, plain = handler.received
    assert received.rcpt_tos == ["ana@example.org"]
    assert received.data.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n") + b"\n"
    assert plain.rcpt_tos == ["ben@example.org"] and plain.data == undotted


def test_the_next_envelope_rides_with_the_data_and_faults_stay_with_their_message() -> None:
    """With PIPELINING each message's data goes out with the next message's MAIL, RCPT and
    DATA. A refused recipient, a temporary DATA failure (retried: the announced envelope is
    abandoned by reconnecting) and a connection dropped at the message's end (uncertain: not
    retried, since the server may have taken it) each affect only their own message."""
    from digest.delivery import SMTPSender, send_with_retries
    from digest.errors import PermanentDeliveryError, UncertainDeliveryError
    from digest.settings import SmtpSettings

    handler = RecordingHandler()
    handler.rcpt_replies["gone@example.org"] = "550 5.1.1 no such user"
    # DATA replies in order: m0 accepted, m2 once deferred, then accepted, m3 dropped, ...
    handler.data_script = ["", "451 4.3.0 try later", "", "DROP"]
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    recipients = ["m0@example.org", "gone@example.org", "m2@example.org", "m3@example.org"]
    recipients += [f"m{n}@example.org" for n in range(4, 8)]
    attempts: dict[str, int] = {}
    try:
        sender = SMTPSender(SmtpSettings(host="127.0.0.1", port=port, timeout=5))
        for number, recipient in enumerate(recipients):
            then = recipients[number + 1] if number + 1 < len(recipients) else None
            data = f"Subject: {recipient}\r\n\r\n.line for {recipient}\r\n".encode()
            sender.expect_next(("digest@example.org", then) if then else None)
            try:
                attempts[recipient] = send_with_retries(
                    sender, "digest@example.org", recipient, data, retries=2, backoff=0.0
                )
            except PermanentDeliveryError as exc:
                assert recipient == "gone@example.org" and "550 5.1.1" in str(exc)
            except UncertainDeliveryError as exc:
                assert recipient == "m3@example.org" and "never answered the end" in str(exc)
                assert exc.attempts == 1
        sender.close()
    finally:
        controller.stop()
    delivered = [r.rcpt_tos for r in handler.received]
    assert delivered == [[r] for r in recipients if r not in ("gone@example.org", "m3@example.org")]
    for received in handler.received:
        [recipient] = received.rcpt_tos
        assert received.message["Subject"] == recipient
        assert received.data.endswith(f"\r\n.line for {recipient}\r\n".encode())
    assert attempts["m2@example.org"] == 2 and "m3@example.org" not in attempts
    assert attempts["m0@example.org"] == attempts["m7@example.org"] == 1
    # One connection to start, one after the deferral, one after the drop.
    assert handler.sessions == 3
