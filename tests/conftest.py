"""Shared fixtures: a project folder built from the shipped files, a real SMTP server on
loopback (aiosmtpd) that records what arrives and can inject faults, and a CLI runner.

The runner calls `digest` in this process through click's CliRunner (no interpreter start-up
and imports per call), or, with `process=True`, as a real `python -m digest` subprocess for
what needs a process of its own: signals, kills, locks held by another process, and the
module entry point itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
# Debian's Chromium, as .ci/run installs it, with the flags this sandboxed machine needs.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SEED = ROOT / "items" / "office-news-2020.txt"
DATA = Path(__file__).resolve().parent / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class RecordingHandler:
    """Collects every message the server accepted. Faults are injected with:

    - `rcpt_replies[address]`: a reply (e.g. "550 5.1.1 no such user") for RCPT TO;
    - `data_script`: replies used, in order, for the next DATA commands instead of accepting
      ("451 4.3.0 try later"; "DROP" closes the connection mid-DATA without a reply);
    - `data_delay`: seconds to wait before answering DATA (a slow server).

    It offers PIPELINING (RFC 2920) like the servers digest meets in practice, unless
    `pipelining` is False.
    """

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_script: list[str] = field(default_factory=list)
    data_delay: float = 0.0
    data_hook: Callable[[Any, Any], Awaitable[str | None]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    pipelining: bool = True
    sessions: int = 0  # connections greeted with EHLO

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        if not self.pipelining:
            return responses
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_hook is not None:
            reply = await self.data_hook(session, envelope)
            if reply:
                return reply
        with self.lock:
            scripted = self.data_script.pop(0) if self.data_script else None
        if scripted == "DROP":
            server.transport.close()
            return "421 4.3.0 connection dropped by test"
        if scripted:
            return scripted
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 accepted"

    def count_for(self, address: str) -> int:
        return sum(address in r.rcpt_tos for r in self.received)

    def messages_for(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.received if address in r.rcpt_tos]


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler
    controller: Controller


@contextlib.contextmanager
def running_smtp_server() -> Iterator[SmtpServer]:
    """A real aiosmtpd server on loopback, recording what it receives, for as long as held."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, controller)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server


@dataclass
class Project:
    """A project folder like the shipped one: digest.yaml, subscribers.yaml, templates, items."""

    root: Path
    postgres_url: str | None = None  # set by `use_postgresql`: the state is in that database

    @property
    def config(self) -> Path:
        return self.root / "digest.yaml"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def state(self) -> Path:
        return self.root / ".digest" / "state.db"

    @property
    def state_location(self) -> Any:
        """What `State(...)` opens: the SQLite file, or the PostgreSQL database."""
        if self.postgres_url is None:
            return self.state
        return postgres_state(self.postgres_url, self.root / ".digest" / "state")

    def use_postgresql(self, url: str) -> None:
        self.postgres_url = url
        self.settings(state=url)

    def settings(self, **changes: Any) -> dict[str, Any]:
        data = yaml.safe_load(self.config.read_text())
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = _merge(data[key], value)
            else:
                data[key] = value
        self.config.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return data

    def use_smtp(self, server: SmtpServer, **smtp: Any) -> None:
        options = {
            "host": server.host,
            "port": server.port,
            "security": "none",
            "retry_backoff": 0.05,
            "timeout": 5,
            **smtp,
        }
        self.settings(delivery={"method": "smtp", "smtp": options})

    def subscribers(self, entries: list[dict[str, Any]]) -> None:
        (self.root / "subscribers.yaml").write_text(
            yaml.safe_dump({"subscribers": entries}, sort_keys=False, allow_unicode=True)
        )

    def maildir_messages(self) -> list[EmailMessage]:
        """The messages in the Maildir, in the order they were written (Maildir's file names
        do not sort that way within a second)."""
        new = self.outbox / "new"
        if not new.is_dir():
            return []
        files = sorted(new.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in files
        ]

    def sent_items(self) -> dict[str, int]:
        """How many items each subscriber was sent, from the state's `sent` deliveries."""
        counts: dict[str, int] = {}
        for subscriber, item_ids in self.query(
            "SELECT subscriber, item_ids FROM deliveries WHERE status = 'sent'"
        ):
            counts[subscriber] = counts.get(subscriber, 0) + len(json.loads(item_ids))
        return counts

    def query(self, sql: str, parameters: Any = ()) -> list[Any]:
        """Rows of a query on the state as it is, on either backend."""
        if self.postgres_url is None:
            with contextlib.closing(sqlite3.connect(self.state)) as db:
                return db.execute(sql, parameters).fetchall()
        from digest.state import State

        with State(self.state_location) as state:
            return [tuple(row) for row in state.db.execute(sql, parameters).fetchall()]

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        check: bool = False,
        process: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """`digest ARGS --config <this project>` from the project folder: in this process, or
        as a real subprocess with `process=True`."""
        return run_digest(
            *args,
            "--config",
            str(self.config),
            cwd=self.root,
            env=env,
            timeout=timeout,
            check=check,
            process=process,
        )


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = value
    return result


# What every run sees, in or out of process: wide tables, no colour codes.
CLI_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def run_digest(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = False,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`digest ARGS` run from `cwd`, with `env` over this process's environment.

    By default in this process (click's CliRunner); with `process=True` as a real subprocess
    of the installed package (`python -m digest`). Either way the result has the returncode,
    stdout and stderr a process would have had, an uncaught exception's traceback included.
    """
    run = _run_process if process else _run_in_process
    result = run(list(args), cwd, {**CLI_ENV, **(env or {})}, timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"digest {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def _run_process(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class _RunTimedOut(BaseException):
    """Raised in the main thread when an in-process run passes its timeout (a BaseException,
    so that the code under test does not catch it as an error of its own)."""


def _run_in_process(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    from click.testing import CliRunner

    from digest import caches
    from digest.cli import main

    caches.clear()  # each run starts with what a new process has: nothing remembered
    try:
        with contextlib.chdir(cwd), _consoles_as_in_a_pipe(), _deadline(timeout):
            result = CliRunner().invoke(main, args, env=env, prog_name="digest")
    except _RunTimedOut:
        raise subprocess.TimeoutExpired(["digest", *args], timeout) from None
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What the interpreter prints for an exception nothing caught (exit code 1).
        assert result.exc_info is not None
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(["digest", *args], result.exit_code, result.stdout, stderr)


@contextlib.contextmanager
def _consoles_as_in_a_pipe() -> Iterator[None]:
    """The CLI's rich consoles as a process started with COLUMNS=200 and NO_COLOR=1 and its
    output on pipes has them. They are made once, at import, and take their width and colour
    system from the environment and terminal of that moment; they write to whatever
    sys.stdout and sys.stderr are when they print (CliRunner's buffers)."""
    from digest.cli import output

    consoles = (output.out, output.err)
    saved = [(c._width, c._color_system, c.no_color) for c in consoles]
    for console in consoles:
        console.width = int(CLI_ENV["COLUMNS"])
        console._color_system = None  # what rich picks for a file that is not a terminal
        console.no_color = True
    try:
        yield
    finally:
        for console, (width, color_system, no_color) in zip(consoles, saved, strict=True):
            console._width, console._color_system, console.no_color = width, color_system, no_color


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """`_RunTimedOut` in the main thread after `seconds`, like subprocess.run's timeout."""

    def expired(signum: int, frame: object) -> None:
        raise _RunTimedOut

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copytree(ROOT / "items", root / "items")
    shutil.copy(ROOT / "subscribers.yaml", root / "subscribers.yaml")
    shutil.copy(ROOT / "digest.yaml", root / "digest.yaml")
    return Project(root)


# -- PostgreSQL ---------------------------------------------------------------------------------
# One throwaway cluster per test session (per xdist worker), a fresh database per test. Tests
# that need it are marked `postgresql` and skipped only when the server binaries are absent.


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgresql: needs a PostgreSQL server (Debian's postgresql package)"
    )


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    from .postgres import PASSWORD, Cluster, binaries

    if binaries() is None:
        reason = "PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)"
        if os.environ.get("CI"):  # .ci/run installs them: there the tests must run
            pytest.fail(reason)
        pytest.skip(reason)
    os.environ["DIGEST_STATE_PASSWORD"] = PASSWORD  # what the state settings read by default
    with Cluster.start() as cluster:
        yield cluster


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def postgres_url(postgres_cluster: Any) -> Iterator[str]:
    """A new empty database on the session's cluster; its URL (the password is in the
    environment, as in production)."""
    from digest.state import postgres

    name = f"t{os.getpid()}_{next(_databases)}"
    url = postgres_cluster.create_database(name)
    try:
        yield url
    finally:
        postgres.close_idle()
        postgres_cluster.drop_database(name)


def postgres_state(url: str, local: Path) -> Any:
    from digest.settings import PostgresState

    return PostgresState(url=url, local=local)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def backend(request: pytest.FixtureRequest) -> str:
    """Run the test on each state backend."""
    return str(request.param)


@pytest.fixture
def state_location(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Where the test's state lives: a SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        return tmp_path / "state.db"
    url = request.getfixturevalue("postgres_url")
    return postgres_state(url, tmp_path / "state")


@pytest.fixture
def any_project(project: Project, backend: str, request: pytest.FixtureRequest) -> Project:
    """The project, its state on each backend in turn."""
    if backend == "postgresql":
        project.use_postgresql(request.getfixturevalue("postgres_url"))
    return project
