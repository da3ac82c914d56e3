"""`digest state migrate --to`: the whole state copied from one backend to the other, SQLite to
an empty PostgreSQL database or PostgreSQL to a new SQLite file.

Every table both engines keep is copied row for row, ids included (so a VERP token or a
bounce that names a delivery still finds it), and PostgreSQL's identity counters are moved
past them. The suppression journal goes along: a SQLite state's file becomes the database's
lines (and this host's copy), a PostgreSQL state's lines become the file beside the new one.
What a killed run's acceptance log holds is folded in first, so a send after the move
repeats nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import StateError
from ..settings import PostgresState, StateLocation
from . import suppressions
from .schema import SCHEMA, columns_of
from .shared_runs import SharedRuns
from .sqlite import State, exists

# Parents before the rows that name them; tables added later come after, in name order.
ORDER = (
    "meta", "items", "sources", "runs", "deliveries", "web_subscribers", "web_events",
    "bounce_mails", "bounce_events", "suppressions",
)  # fmt: skip
SKIP = {"schema_version", "sqlite_sequence"}  # each engine's own bookkeeping


def refuse_unless_empty(target: StateLocation) -> None:
    if exists(target):
        raise StateError(
            f"{target}: already holds a digest state; the move needs an empty one",
            hint="create a new empty database (or name a new file) and run the move again",
        )


def common_tables(source: State, target: State) -> list[str]:
    both = (source.dialect.tables(source.db) & target.dialect.tables(target.db)) - SKIP
    both = {t for t in both if t in ORDER or t in _schema_tables()}
    return [t for t in ORDER if t in both] + sorted(both - set(ORDER))


def _schema_tables() -> set[str]:
    return set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))


def copy_state(source: State, target: State) -> dict[str, int]:
    """Copy every row of every table both hold; returns the rows copied per table."""
    copied: dict[str, int] = {}
    with target.transaction():
        for table in common_tables(source, target):
            columns = sorted(columns_of(source.db, table) & columns_of(target.db, table))
            rows = source.db.execute(f"SELECT {', '.join(columns)} FROM {table}")
            copied[table] = _write(target, table, columns, (tuple(r) for r in rows))
        if target.shared:
            _move_identities(target, list(copied))
    return copied


def _write(target: State, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
    if target.shared:
        return int(target.db.copy_rows(table, columns, rows))
    marks = ", ".join("?" * len(columns))
    batch = list(rows)
    target.db.executemany(f"INSERT INTO {table}({', '.join(columns)}) VALUES ({marks})", batch)
    return len(batch)


def _move_identities(target: State, tables: list[str]) -> None:
    """PostgreSQL's identity columns continue after the ids copied in."""
    for table in tables:
        if "id" not in columns_of(target.db, table):
            continue
        sequence = target.db.execute("SELECT pg_get_serial_sequence(?, 'id')", (table,))
        name = sequence.fetchone()[0]
        if name is not None:
            target.db.execute(
                f"SELECT setval(?, COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)",
                (name,),
            )


def move_journal(source: State, target: State) -> int:
    """The suppression journal's lines, to where the target keeps them; returns how many."""
    lines = _journal_lines(source)
    if not lines:
        return 0
    events = []
    for line in lines:
        at, action, email, via = (line.split("\t") + ["", "", "", ""])[:4]
        events.append((at, action, email, via))
    if target.shared:
        with target.transaction():
            target.db.executemany(
                "INSERT INTO suppression_journal(at, action, email, via) VALUES (?, ?, ?, ?)",
                events,
            )
    path = suppressions.journal_path(target.path)
    if not path.exists() or path != suppressions.journal_path(source.path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            if handle.tell() == 0:
                handle.write(suppressions.HEADER)
            handle.write("".join(line + "\n" for line in lines))
    return len(lines)


def _journal_lines(source: State) -> list[str]:
    journal = suppressions.journal_of(source)
    path = journal.path if isinstance(journal, suppressions.SharedJournal) else journal
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    if isinstance(journal, suppressions.SharedJournal):
        known = set(lines)
        lines = [line for line in journal.lines() if line not in known] + lines
        lines.sort(key=lambda line: line.split("\t", 1)[0])
    return [line for line in lines if len(line.split("\t")) >= 4]


def ready_source(source: State) -> None:
    """Refuse while a shared run is open (a SQLite state's acceptance log is folded by the
    caller)."""
    if source.shared:
        runs = SharedRuns(source)
        current = runs.open_run()
        if current is not None:
            raise StateError(
                f"{source.name}: run {current.run_id} is still open (opened by "
                f"{current.opened_by})",
                hint="let it finish (or stop every host's digest send) and move the state then",
            )


def target_location(value: str, settings_state: StateLocation, password_env: str) -> StateLocation:
    """Where `--to` points: a PostgreSQL database, or a SQLite file (relative to here)."""
    if value.lower().startswith(("postgresql:", "postgres:")):
        local = (
            settings_state.local
            if isinstance(settings_state, PostgresState)
            else Path(settings_state).with_suffix("")
        )
        return PostgresState(url=value, password_env=password_env, local=local)
    return Path(value).absolute()
