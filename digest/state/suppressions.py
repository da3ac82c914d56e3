"""The suppression journal: every unsubscribe (and its undoing) also written, append-only, to a
plain-text file beside the state, which sends honour too.

So an unsubscribe never depends on the state alone: a state restored from an older backup, or
lost and started afresh, still keeps out everyone who asked to receive nothing. One line per
event, tab-separated, newest last; the last line for an address decides:

    2026-11-30T14:02:11Z	unsubscribe	ana@example.org	one-click
    2026-12-02T09:15:40Z	resubscribe	ana@example.org	preferences

With a PostgreSQL state the lines are also kept in the database (`SharedJournal`: the
`suppression_journal` table), so every host honours what any host wrote; the file beside
digest.yaml on each host keeps the lines that host wrote, and `restore_lines` writes back
any the database lacks (after it was restored from an older backup).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import StateError
from ..models import address_key
from ..settings import PostgresState, StateLocation

HEADER = (
    "# digest suppression journal: one line per unsubscribe, resubscribe, suppress (a bounce)\n"
    "# or unsuppress, newest last.\n"
    "# Sends skip an address that is unsubscribed or suppressed here. Append only: keep it with\n"
    "# the state's backups.\n"
)
STOPS, STARTS = {"unsubscribe", "suppress"}, {"resubscribe", "unsuppress"}


class SharedJournal:
    """The journal of a PostgreSQL state: this host's file, and the database's table (whose
    statements run in the caller's transaction)."""

    def __init__(self, path: Path, db: Any) -> None:
        self.path, self.db = path, db
        self._seen: tuple[tuple[int, int], frozenset[str]] = ((-1, -1), frozenset())

    def write(self, events: list[tuple[str, str, str, datetime]]) -> None:
        self.db.executemany(
            "INSERT INTO suppression_journal(at, action, email, via) VALUES (?, ?, ?, ?)",
            [(_stamp(at), action, email.strip(), via) for action, email, via, at in events],
        )

    def lines(self) -> list[str]:
        rows = self.db.execute(
            "SELECT at, action, email, via FROM suppression_journal ORDER BY id"
        ).fetchall()
        return ["\t".join(row) for row in rows]

    def suppressed_with(self, file_lines: list[str]) -> frozenset[str]:
        """What the table and this host's file say together, in time order (the table is read
        again only when a line was added to it, or to the file)."""
        row = self.db.execute("SELECT MAX(id) FROM suppression_journal").fetchone()
        seen = (int(row[0]) if row and row[0] is not None else 0, len(file_lines))
        if seen != self._seen[0]:
            table = self.lines()
            known = set(table)
            merged = table + [line for line in file_lines if line not in known]
            merged.sort(key=lambda line: line.split("\t", 1)[0])  # stable: same second keeps order
            self._seen = (seen, _stopped(merged))
        return self._seen[1]


Journal = Path | SharedJournal  # a SQLite state's journal is its file alone


def journal_path(state: StateLocation) -> Path:
    """`.digest/state.db` -> `.digest/state.suppressions.txt` (for PostgreSQL, the same name
    beside digest.yaml on each host)."""
    path = state.local if isinstance(state, PostgresState) else state
    return path.with_name(f"{path.stem}.suppressions.txt")


def journal_of(state: Any) -> Journal:
    """The journal of an open `State`."""
    path = journal_path(state.path)
    return SharedJournal(path, state.db) if state.shared else path


def _stamp(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def append(journal: Journal, action: str, email: str, via: str, at: datetime) -> None:
    """Add one event, on disk before this returns (an unsubscribe is a promise)."""
    append_all(journal, [(action, email, via, at)])


def append_all(journal: Journal, events: list[tuple[str, str, str, datetime]]) -> None:
    """Add events (action, email, via, at) in one write and one fsync: a batch of bounces."""
    if not events:
        return
    assert all(action in STOPS | STARTS for action, *_ in events)
    if isinstance(journal, SharedJournal):
        journal.write(events)
        path = journal.path
    else:
        path = journal
    text = "".join(
        f"{_stamp(at)}\t{action}\t{email.strip()}\t{via}\n" for action, email, via, at in events
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size == 0:
                os.write(fd, HEADER.encode())
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StateError(
            f"{path}: cannot write the suppression journal: {exc.strerror}",
            hint="free some space or fix the folder's permissions; the unsubscribe is kept in "
            "the state",
        ) from exc


def suppressed(journal: Journal) -> frozenset[str]:
    """The addresses (casefolded) whose last event stops their digests. Unreadable lines are
    skipped: the journal is a safety net, the state holds the full record."""
    path = journal.path if isinstance(journal, SharedJournal) else journal
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    if isinstance(journal, SharedJournal):
        return journal.suppressed_with(lines)
    return _stopped(lines)


def restore_lines(journal: Journal) -> int:
    """Write back to the database the lines of this host's file it lacks (it was restored
    from an older backup); returns how many. Nothing to do for a SQLite state."""
    if not isinstance(journal, SharedJournal):
        return 0
    try:
        text = journal.path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return 0
    have = set(journal.lines())
    missing = []
    for line in text.splitlines():
        parts = line.split("\t")
        if line.startswith("#") or len(parts) < 4 or line in have:
            continue
        if parts[1] in STOPS | STARTS:
            missing.append((parts[0], parts[1], parts[2], parts[3]))
            have.add(line)
    if missing:
        journal.db.executemany(
            "INSERT INTO suppression_journal(at, action, email, via) VALUES (?, ?, ?, ?)", missing
        )
    return len(missing)


def _stopped(lines: list[str]) -> frozenset[str]:
    stopped: dict[str, set[str]] = {}
    for line in lines:
        parts = line.split("\t")
        if line.startswith("#") or len(parts) < 3:
            continue
        action, key = parts[1], address_key(parts[2])
        kinds = stopped.setdefault(key, set())
        if action in STOPS:
            kinds.add(action)
        elif action in STARTS:
            kinds.discard("unsubscribe" if action == "resubscribe" else "suppress")
    return frozenset(key for key, kinds in stopped.items() if kinds)
