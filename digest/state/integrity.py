"""Telling a state a run left from one that was emptied, cut short or damaged, and turning
SQLite's failures into errors that say which file, what is wrong and what to do.

An emptied state must never pass for a fresh install: that would mail every digest again,
unsubscribed readers included, under a new token secret that breaks every link already sent.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import StateError

SQLITE_HEADER = b"SQLite format 3\x00"
CORE_TABLES = ("runs", "deliveries")  # in every state any version of digest wrote


def restore_hint(path: Path | str) -> str:
    if str(path).startswith(("postgresql:", "postgres:")):
        return (
            "restore the database from your latest backup (`digest state backup` makes one with "
            "pg_dump; pg_restore puts it back); a new empty database mails every subscriber the "
            "recent items again"
        )
    return (
        f"restore the state from your latest backup (`digest state backup` makes one) to {path}; "
        "to start afresh instead, move the file aside: a new state mails every subscriber the "
        "recent items again (the suppression list beside it still keeps unsubscribed readers out)"
    )


def check_file(path: Path) -> None:
    """Raise StateError when a state file exists but is not what a run leaves behind: empty,
    not SQLite, or shorter than its own header says. A missing file is a fresh install."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(
            f"{path}: cannot read the state file: {exc.strerror}",
            hint="check the file's and its folder's permissions",
        ) from exc
    if size == 0:
        raise StateError(f"{path}: the state file is empty (0 bytes)", hint=restore_hint(path))
    if not header.startswith(SQLITE_HEADER) or len(header) < 100:
        raise StateError(
            f"{path}: the state file is damaged: it is not a SQLite database",
            hint=restore_hint(path),
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    counted = header[24:28] == header[92:96]  # the page count is valid (SQLite 3.7.0 and later)
    wal = Path(f"{path}-wal")
    pending_wal = wal.exists() and wal.stat().st_size > 0  # recent pages may live there
    if counted and not pending_wal and size < pages * page_size:
        raise StateError(
            f"{path}: the state file is truncated: {size} bytes where it holds {pages * page_size}",
            hint=restore_hint(path),
        )


def check_tables(db: sqlite3.Connection, path: Path | str) -> None:
    """A state that exists must hold the tables a run made (a file, or a PostgreSQL database
    with digest's version mark)."""
    if hasattr(db, "target"):  # PostgreSQL
        from .dialect import PostgreSQL

        names = PostgreSQL.tables(db)
    else:
        try:
            names = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            raise translate(exc, Path(path)) from exc
    missing = [t for t in CORE_TABLES if t not in names]
    if missing:
        raise StateError(
            f"{path}: the state holds no digest state (missing tables: {', '.join(missing)})",
            hint=restore_hint(path),
        )


def integrity_problems(path: Path) -> list[str]:
    """What SQLite's own integrity check finds (slow on a large state: for `digest check`)."""
    db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        rows = [row[0] for row in db.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        db.close()
    return [] if rows == ["ok"] else rows


def translate(exc: sqlite3.Error, path: Path) -> StateError:
    """SQLite's error as one the person running digest can act on."""
    text = str(exc)
    if "disk is full" in text or "database or disk is full" in text:
        return StateError(
            f"{path}: the disk holding the state is full",
            hint="free some space and run again: what was recorded is kept, and nothing that "
            "went out is sent twice",
        )
    if "readonly" in text or "read-only" in text:
        return StateError(
            f"{path}: the state cannot be written (read-only)",
            hint="check the permissions of the state file and of its folder",
        )
    if "unable to open" in text:
        return StateError(
            f"{path}: the state file cannot be opened or created",
            hint="check that its folder exists and can be written",
        )
    if "locked" in text:
        return StateError(
            f"{path}: the state is locked by another process",
            hint="wait for the other digest command to finish and run again",
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StateError(f"{path}: the state file is damaged: {text}", hint=restore_hint(path))
    return StateError(f"{path}: the state failed: {text}", hint=restore_hint(path))


class GuardedConnection(sqlite3.Connection):
    """A connection whose failures are StateErrors naming the state file (`translate`)."""

    path: Path = Path("state")

    def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().execute(sql, parameters)  # type: ignore[arg-type]
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def executemany(self, sql: str, parameters: object, /) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().executemany(sql, parameters)  # type: ignore[arg-type]
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(script)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
