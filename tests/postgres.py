"""A throwaway PostgreSQL cluster for the tests and the benchmark: Debian's server binaries
(`initdb`, `pg_ctl`), a data folder in a temporary folder, a free loopback port, the unix
socket beside the data. As root the server runs as the `postgres` user (it refuses root).

    with Cluster.start() as cluster:
        url = cluster.create_database("t1")   # postgresql://digest@127.0.0.1:PORT/t1

Connections over TCP authenticate with a password (scram-sha-256): the role `digest` has
`PASSWORD`; the unix socket trusts the `postgres` superuser that makes databases.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BIN_FOLDERS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
USER = "digest"
PASSWORD = "digest-test-password"
FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")  # tests lose nothing


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl (the newest Debian version), or None."""
    for folder in BIN_FOLDERS:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    folder: Path
    port: int
    bin: Path
    as_postgres: bool

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "run"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self.as_postgres else list(args)

    def _run(self, *args: str) -> None:
        result = subprocess.run(self._cmd(*args), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stderr or result.stdout}")

    @classmethod
    @contextlib.contextmanager
    def start(cls, fast: bool = True, settings: tuple[str, ...] = ()) -> Iterator[Cluster]:
        folder = binaries()
        if folder is None:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed")
        root = Path(tempfile.mkdtemp(prefix="digest-pg-"))
        root.chmod(0o755)
        cluster = cls(root, _free_port(), folder, os.geteuid() == 0)
        try:
            cluster._init(fast, settings)
            yield cluster
        finally:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)

    def _init(self, fast: bool, settings: tuple[str, ...]) -> None:
        self.socket_dir.mkdir()
        if self.as_postgres:
            entry = pwd.getpwnam("postgres")
            for path in (self.folder, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        password_file = self.folder / "pw"
        password_file.write_text(PASSWORD + "\n")
        password_file.chmod(0o644)
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--no-sync",
            "-A", "trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.socket_dir}",
            "-c max_connections=200",
            *(f"-c {s}" for s in (FAST if fast else ()) + settings),
        ]
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", " ".join(options),
            "-l", str(self.folder / "log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        self.sql(f"CREATE ROLE {USER} LOGIN CREATEDB PASSWORD '{PASSWORD}'")

    def sql(self, statement: str, database: str = "postgres") -> str:
        result = subprocess.run(
            self._cmd(
                str(self.bin / "psql"), "-h", str(self.socket_dir), "-p", str(self.port),
                "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", statement,
            ),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql: {result.stderr}")
        return result.stdout

    def create_database(self, name: str) -> str:
        """A new empty database owned by `digest`; its URL (no password in it)."""
        self.sql(f'CREATE DATABASE "{name}" OWNER {USER}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self, name: str, user: str = USER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop"),
                capture_output=True, check=False,
            )  # fmt: skip
        # Give the socket a moment to go, so a quick restart finds its port free.
        time.sleep(0.05)
