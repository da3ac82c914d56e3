"""The PostgreSQL connection the state's methods use as they use SQLite's (psycopg 3).

`PgConnection` takes SQLite's placeholders (`?`, `:name`), so each statement the two engines
agree on is written once; its rows are read by name or by index, like `sqlite3.Row`. Every
failure is a StateError naming the server (never a traceback, never the password).

Connecting costs tens of milliseconds (SCRAM authentication), so closed connections go back
to a small per-process pool (`digest serve` opens the state per request).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import RowMaker

from ..caches import memo, register
from ..errors import StateError
from ..settings import PostgresState

CONNECT_TIMEOUT = 10  # seconds: an unreachable server is reported, not waited for
POOL_SIZE = 8  # idle connections kept per database and mode


class Row(tuple):  # type: ignore[type-arg]
    """A result row readable by column name and by index (as `sqlite3.Row`)."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@memo(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def _rows(cursor: Any) -> RowMaker[Row]:
    names = tuple(c.name for c in cursor.description or ())
    return _row_class(names)  # type: ignore[return-value]


# A string literal, a quoted name, a cast, a placeholder, or a percent sign.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|\?|:[A-Za-z_]\w*|%")


@memo(maxsize=512)
def placeholders(sql: str) -> str:
    """SQLite's `?` and `:name` as psycopg's `%s` and `%(name)s` (and `%` as `%%`)."""

    def swap(match: re.Match[str]) -> str:
        token = match.group()
        if token[0] in "'\"":
            return token.replace("%", "%%")
        if token == "::":
            return token
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return f"%({token[1:]})s"

    return _TOKENS.sub(swap, sql)


def describe(target: PostgresState) -> str:
    """How messages name the state: the URL (it never holds a password)."""
    return target.url


def translate(exc: psycopg.Error, target: PostgresState) -> StateError:
    """psycopg's error as one line naming the server, and what to check."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.removeprefix("connection failed: ")
    if isinstance(exc, psycopg.OperationalError) and "authentication failed" in text:
        return StateError(
            f"{target}: the PostgreSQL server at {target.host} refused the login: {text}",
            hint=f"check the user in 'state' and the password in ${target.password_env} "
            "(or PGPASSWORD, ~/.pgpass)",
        )
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return StateError(
            f"{target}: not allowed on the PostgreSQL server at {target.host}: {text}",
            hint="grant the user of 'state' the rights on its database (it creates the tables)",
        )
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return StateError(
            f"{target}: the state cannot be written here (read-only): {text}",
            hint="point 'state' at the primary server, not a standby",
        )
    if isinstance(exc, psycopg.OperationalError):
        return StateError(
            f"{target}: cannot reach the PostgreSQL server at {target.host}: {text}",
            hint="check that the server runs and that 'state' names its host, port and "
            "database; the next run tries again",
        )
    return StateError(f"{target}: the PostgreSQL state failed: {text}")


def _password(target: PostgresState) -> str | None:
    return os.environ.get(target.password_env) or None  # else libpq's PGPASSWORD, ~/.pgpass


def _connect(target: PostgresState) -> psycopg.Connection[Row]:
    try:
        return psycopg.connect(
            target.url,
            password=_password(target),
            connect_timeout=CONNECT_TIMEOUT,
            autocommit=True,  # transactions are begun and ended explicitly, as with SQLite
            row_factory=_rows,
            application_name="digest",
        )
    except psycopg.Error as exc:
        raise translate(exc, target) from None


class PgConnection:
    """A psycopg connection with sqlite3's calling conventions, its failures StateErrors."""

    def __init__(
        self, target: PostgresState, raw: psycopg.Connection[Row], readonly: bool = False
    ) -> None:
        self.target, self.raw, self.readonly = target, raw, readonly
        self.relaxed = False  # session settings changed (`State.relax_durability`)

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        try:
            if not parameters:
                return self.raw.execute(sql)  # type: ignore[arg-type]
            return self.raw.execute(placeholders(sql), parameters)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise translate(exc, self.target) from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Any:
        cursor = self.raw.cursor()
        try:
            cursor.executemany(placeholders(sql), list(rows))  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise translate(exc, self.target) from None
        return cursor

    def executescript(self, script: str) -> None:
        """Several statements without parameters (the simple query protocol runs them)."""
        self.execute(script)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """COPY rows into a table: the fastest way to write many at once."""
        count = 0
        try:
            with self.raw.cursor().copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN"  # type: ignore[arg-type]
            ) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        except psycopg.Error as exc:
            raise translate(exc, self.target) from None
        return count

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def close(self) -> None:
        _release(self)


# -- the pool ---------------------------------------------------------------------------------
_idle: dict[tuple[str, bool], list[psycopg.Connection[Row]]] = {}
_lock = threading.Lock()


def connect(target: PostgresState, readonly: bool = False) -> PgConnection:
    """A connection from the pool, or a new one; `readonly` ones refuse to write."""
    key = (target.url, readonly)
    with _lock:
        idle = _idle.get(key, [])
        raw = idle.pop() if idle else None
    if raw is not None and not raw.closed:
        try:
            raw.execute("SELECT 1")
            return PgConnection(target, raw, readonly)
        except psycopg.Error:
            raw.close()
    raw = _connect(target)
    if readonly:
        try:
            raw.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            raise translate(exc, target) from None
    return PgConnection(target, raw, readonly)


def _release(connection: PgConnection) -> None:
    raw = connection.raw
    if raw.closed:
        return
    try:
        if connection.in_transaction:
            raw.execute("ROLLBACK")
        if connection.relaxed:
            raw.execute("RESET synchronous_commit")
    except psycopg.Error:
        raw.close()
        return
    key = (connection.target.url, connection.readonly)
    with _lock:
        idle = _idle.setdefault(key, [])
        if len(idle) < POOL_SIZE and os.getpid() == _pid:
            idle.append(raw)
            return
    raw.close()


def close_idle() -> None:
    """Close every pooled connection (tests, between databases)."""
    with _lock:
        pooled = [raw for idle in _idle.values() for raw in idle]
        _idle.clear()
    for raw in pooled:
        raw.close()


_pid = os.getpid()
register("digest.state.postgres.pool", close_idle, lambda: sum(map(len, _idle.values())))
