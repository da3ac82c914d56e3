"""Where SQLite and PostgreSQL differ, and only that: opening, the schema's types, the version
mark, the catalogue, how a transaction begins. Every other statement is written once and runs
on both (see `postgres.PgConnection`).

SQLite serialises writers itself (`BEGIN IMMEDIATE`). PostgreSQL runs transactions side by
side, so a read-then-write transaction takes a transaction-scoped advisory lock: the same
one-writer-at-a-time rule the code was written for. The hot paths of a send (recording
deliveries, claiming batches) are written to be safe side by side and take none.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from .schema import LATEST, MIGRATIONS, SCHEMA, for_postgresql, postgresql_tables


def lock_key(name: str) -> int:
    """A stable 32-bit key for an advisory lock named `name`."""
    return zlib.crc32(f"digest:{name}".encode())


class SQLite:
    name = "sqlite"

    @staticmethod
    def begin(db: Any, lock: str | None) -> None:
        db.execute("BEGIN IMMEDIATE")

    @staticmethod
    def has_table(db: Any, name: str) -> bool:
        row = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    @staticmethod
    def tables(db: Any) -> set[str]:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    @staticmethod
    def one_of(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`column` equal to one of `values`: the condition and its parameters."""
        return f"{column} IN ({','.join('?' * len(values))})", list(values)


class PostgreSQL:
    name = "postgresql"

    @staticmethod
    def begin(db: Any, lock: str | None) -> None:
        db.execute("BEGIN")
        if lock is not None:
            db.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(lock),))

    @staticmethod
    def has_table(db: Any, name: str) -> bool:
        return name in PostgreSQL.tables(db)

    @staticmethod
    def tables(db: Any) -> set[str]:
        rows = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {row[0] for row in rows}

    @staticmethod
    def one_of(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """One array parameter rather than one per value: psycopg adapts the list once and the
        server plans a fixed statement (a send reads histories 64 subscribers at a time)."""
        return f"{column} = ANY(?)", [list(values)]


VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


def postgresql_version(db: Any) -> int | None:
    """The schema version a PostgreSQL state is at; None for a database without one."""
    if not PostgreSQL.has_table(db, "schema_version"):
        return None
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def migrate_postgresql(db: Any) -> None:
    """Make or bring up to date a PostgreSQL state, one host at a time (an advisory lock).
    A new database is made from SCHEMA at LATEST; an older one runs each later migration
    (SQL translated by `for_postgresql`, or a function of the connection)."""
    PostgreSQL.begin(db, "schema")
    try:
        version = postgresql_version(db)
        if version is None:
            db.execute(for_postgresql(VERSION_TABLE))
            db.execute(for_postgresql(SCHEMA) + postgresql_tables())
            db.execute("INSERT INTO schema_version(version) VALUES (?)", (LATEST,))
        elif version < LATEST:
            for target in sorted(v for v in MIGRATIONS if v > version):
                step = MIGRATIONS[target]
                if isinstance(step, str):
                    db.execute(for_postgresql(step))
                else:
                    step(db)
            db.execute(for_postgresql(SCHEMA) + postgresql_tables())
            db.execute("UPDATE schema_version SET version = ?", (LATEST,))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
