"""`digest run` as a real process: a send already due goes out on start to a real SMTP server
on loopback, SIGTERM stops it cleanly, and a second start does not send it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.state import State

from .conftest import Project, SmtpServer

DEADLINE = 90.0  # seconds to wait for something that normally takes one or two


def start(project: Project, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "digest", "run", "--config", str(project.config)],
            cwd=project.root,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def wait_for(
    check: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    """Poll until `check()` holds; fail early if the process exits."""
    deadline = time.monotonic() + DEADLINE
    while not check():
        if process.poll() is not None:
            raise AssertionError(
                f"digest run exited {process.returncode} before {what}:\n" + log.read_text()
            )
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}:\n" + log.read_text())
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], log: Path) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("digest run did not stop on SIGTERM:\n" + log.read_text()) from None
    text = log.read_text()
    assert code == 0, text
    return text


def completed(project: Project) -> set[str]:
    with State(project.state) as state:
        return state.completed_due_times()


def test_digest_run_sends_what_is_due_and_stops_on_sigterm(
    project: Project, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    project.use_smtp(smtp_server, timeout=30)
    due = (datetime.now(UTC) - timedelta(minutes=3)).replace(second=0, microsecond=0)
    # One send a year, due three minutes ago in UTC. The same wall time in Tokyo came nine
    # hours earlier; Kingston's daily send at that wall time came 19 hours ago. Each is within
    # catch_up of now, so each goes out on start, once.
    project.settings(
        schedule={"cron": f"{due.minute} {due.hour} {due.day} {due.month} *", "timezone": "UTC"},
        catch_up="1d",
    )
    addresses = ["ana@example.org", "ben@example.org", "kenji@example.org", "marlon@example.org"]
    project.subscribers(
        [
            {"email": "ana@example.org"},
            {"email": "ben@example.org"},
            {"email": "kenji@example.org", "timezone": "Asia/Tokyo"},
            {"email": "marlon@example.org", "frequency": "daily", "timezone": "America/Jamaica"},
        ]
    )
    handler = smtp_server.handler

    first_log = tmp_path / "first.log"
    process = start(project, first_log)
    wait_for(
        lambda: all(handler.count_for(a) >= 1 for a in addresses),
        process,
        first_log,
        "a digest for every subscriber",
    )
    text = stop(process, first_log)
    assert "SIGTERM received: stopping after the message in flight" in text
    assert text.rstrip().endswith("digest.run: stopped"), text
    assert {a: handler.count_for(a) for a in addresses} == {a: 1 for a in addresses}
    assert completed(project) == {
        f"default@{due:%Y-%m-%dT%H:%M:%SZ}",
        f"weekly:Asia/Tokyo@{due - timedelta(hours=9):%Y-%m-%dT%H:%M:%SZ}",
        f"daily:America/Jamaica@{due - timedelta(hours=19):%Y-%m-%dT%H:%M:%SZ}",
    }

    second_log = tmp_path / "second.log"
    process = start(project, second_log)
    wait_for(
        lambda: second_log.read_text().count("was already made") == 3,
        process,
        second_log,
        "the start-up check of every schedule",
    )
    stop(process, second_log)
    assert {a: handler.count_for(a) for a in addresses} == {a: 1 for a in addresses}
    with State(project.state) as state:
        assert [r.kind for r in state.runs(100)] == ["scheduled"] * 3
