"""SMTP faults from the fault-and-attack probe (issue 15): a late reply to the message's end,
no reply at all (uncertain: resent once, later, with the same Message-ID), a server that
never greets, one that hangs up mid-message, and a message over the server's SIZE.

Faults aiosmtpd cannot make (silence at the greeting, a hang-up in the middle of the data)
come from `RawServer`, a real SMTP server on loopback written out for them."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from email.header import decode_header, make_header
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from .conftest import Project, Received, RecordingHandler, SmtpServer, free_port

ANA = "ana@example.org"


def _only_ana(project: Project) -> None:
    project.subscribers([{"email": ANA, "name": "Ana", "regions": ["Central America"]}])


def _rows(project: Project) -> list[dict[str, Any]]:
    with sqlite3.connect(project.state) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM deliveries ORDER BY id")]


def test_a_late_reply_to_the_end_is_waited_for_and_the_message_goes_once(
    project: Project, smtp_server: SmtpServer
) -> None:
    """The probe: `timeout: 2`, and the final "." answered after 3 s, used to send each message
    three times. The reply to the end has its own, long timeout (RFC 5321: 10 minutes).
    Here at half the probe's times."""
    _only_ana(project)
    project.use_smtp(smtp_server, timeout=1)

    async def late(session: Any, envelope: Any) -> None:
        await asyncio.sleep(1.5)

    smtp_server.handler.data_hook = late
    result = project.run("send", "--json")
    assert result.returncode == 0, result.stderr
    assert smtp_server.handler.count_for(ANA) == 1
    assert [(r["status"], r["attempts"]) for r in _rows(project)] == [("sent", 1)]


def test_no_reply_to_the_end_is_uncertain_and_resent_once_with_the_same_message_id(
    project: Project, smtp_server: SmtpServer
) -> None:
    _only_ana(project)
    project.use_smtp(smtp_server, timeout=5, data_timeout=0.5)
    slow = {"left": 2}

    async def keeps_it_then_stays_silent(session: Any, envelope: Any) -> str | None:
        if not slow["left"]:
            return None
        slow["left"] -= 1
        # The server has queued the message, then takes too long to say so.
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        smtp_server.handler.received.append(received)
        await asyncio.sleep(1.5)
        return "250 2.0.0 queued (too late)"

    smtp_server.handler.data_hook = keeps_it_then_stays_silent
    first = project.run("send", "--json")
    assert first.returncode == 1
    report = json.loads(first.stdout)
    assert report["uncertain"] == 1 and report["sent"] == 0
    assert "never answered the end of the message" in report["subscribers"][0]["error"]
    assert [(r["status"], r["attempts"]) for r in _rows(project)] == [("uncertain", 1)]
    second = project.run("send")  # resent once, the same message; unanswered again
    assert second.returncode == 1
    [row] = _rows(project)
    assert row["status"] == "sent" and row["resent"] == 1  # never a third time
    third = project.run("send")
    assert third.returncode == 0 and "Nothing new to send" in third.stdout
    copies = smtp_server.handler.messages_for(ANA)
    assert len(copies) == 2
    assert copies[0]["Message-ID"] == copies[1]["Message-ID"] == row["message_id"]


class RawServer:
    """A real SMTP server on loopback, for faults aiosmtpd cannot make. `mode`:
    - "silent": accepts connections and never says a word;
    - "hang-up-mid-data": the first connection hangs up partway through a message's data,
      later ones take every message."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = free_port()
        self.connections = 0
        self.messages: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        with conn:
            if self.mode == "silent":
                self.stopping.wait()
                return
            reader = conn.makefile("rb")
            conn.sendall(b"220 raw.test ESMTP\r\n")
            while line := reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250-raw.test\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    if number == 1 and self.mode == "hang-up-mid-data":
                        reader.read(2000)  # some of the message, then the line goes dead
                        return
                    data = b""
                    while not data.endswith(b"\r\n.\r\n"):
                        data += reader.readline()
                    self.messages.append(data)
                    conn.sendall(b"250 2.0.0 taken\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.listener.close()


@pytest.fixture
def raw_server(request: pytest.FixtureRequest) -> Iterator[RawServer]:
    server = RawServer(request.param)
    yield server
    server.stop()


@pytest.mark.parametrize("raw_server", ["silent"], indirect=True)
def test_a_server_that_never_greets_stops_the_run_after_one_timeout(
    project: Project, raw_server: RawServer
) -> None:
    project.settings(
        delivery={
            "method": "smtp",
            "smtp": {"host": "127.0.0.1", "port": raw_server.port, "timeout": 1, "retries": 5},
        }
    )
    started = time.monotonic()
    result = project.run("send")
    assert time.monotonic() - started < 15  # once, not four minutes per subscriber
    assert result.returncode == 1  # temporary: the next run or the scheduler tries again
    assert f"cannot reach SMTP server 127.0.0.1:{raw_server.port}: no answer" in result.stderr
    assert raw_server.connections == 1
    assert {r["status"] for r in _rows(project)} == {"failed"}


@pytest.mark.parametrize("raw_server", ["hang-up-mid-data"], indirect=True)
def test_a_hang_up_in_the_middle_of_a_message_is_retried_at_once(
    project: Project, raw_server: RawServer
) -> None:
    _only_ana(project)
    project.settings(
        delivery={
            "method": "smtp",
            "smtp": {"host": "127.0.0.1", "port": raw_server.port, "retry_backoff": 0.05},
        }
    )
    result = project.run("send")
    assert result.returncode == 0, result.stderr
    assert len(raw_server.messages) == 1 and raw_server.connections == 2
    assert [(r["status"], r["attempts"]) for r in _rows(project)] == [("sent", 2)]


class CountingHandler(RecordingHandler):
    mails: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        self.mails += 1
        envelope.mail_from = address
        return "250 OK"


def test_a_message_over_the_servers_size_fails_that_subscriber_without_uploading(
    project: Project,
) -> None:
    _only_ana(project)
    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=20_000)
    controller.start()
    try:
        project.use_smtp(SmtpServer("127.0.0.1", port, handler, controller))
        result = project.run("send", "--json")
    finally:
        controller.stop()
    assert result.returncode == 1
    [row] = json.loads(result.stdout)["subscribers"]
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "accepts at most 20,000 (its SIZE); it was not sent" in row["error"]
    assert handler.mails == 0 and handler.received == []


def test_very_long_names_are_folded_so_the_server_takes_every_header(
    project: Project, smtp_server: SmtpServer
) -> None:
    """The probe: names of hundreds of characters made header lines of 1,524 octets and more,
    and the server refused every message ("500 Line too long") while `digest check` passed."""
    long_ascii = "Regional " + "Migration " * 150
    long_accented = "Lucía Hernández de la Peña " * 25
    project.subscribers(
        [
            {"email": "a@example.org", "name": long_ascii},
            {"email": "b@example.org", "name": long_accented},
        ]
    )
    project.use_smtp(smtp_server)
    result = project.run("send")
    assert result.returncode == 0, result.stderr
    for address, name in (("a@example.org", long_ascii), ("b@example.org", long_accented)):
        raw = next(r.data for r in smtp_server.handler.received if address in r.rcpt_tos)
        lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert max(len(line) for line in lines) <= 998  # RFC 5322's limit: no line is refused
        start = next(n for n, line in enumerate(lines) if line.startswith(b"To: "))
        folded = [lines[start]] + [
            line for line in lines[start + 1 :] if line.startswith(b" ")
        ]  # the To: header and its continuation lines
        assert len(folded) > 5 and max(len(line) for line in folded) <= 78
        # An RFC 2047 decoder drops the folding between encoded words (the stdlib's newer
        # address parser keeps it as a space, a known bug of its own).
        unfolded = b"".join(folded)[len(b"To: ") :].decode("ascii")
        decoded = str(make_header(decode_header(unfolded)))
        assert decoded == f"{' '.join(name.split())} <{address}>"
