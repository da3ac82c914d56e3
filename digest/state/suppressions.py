"""The suppression journal: every unsubscribe (and its undoing) also written, append-only, to a
plain-text file beside the state, which sends honour too.

So an unsubscribe never depends on the state alone: a state restored from an older backup, or
lost and started afresh, still keeps out everyone who asked to receive nothing. One line per
event, tab-separated, newest last; the last line for an address decides:

    2026-11-30T14:02:11Z	unsubscribe	ana@example.org	one-click
    2026-12-02T09:15:40Z	resubscribe	ana@example.org	preferences
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from ..errors import StateError
from ..models import address_key

HEADER = (
    "# digest suppression journal: one line per unsubscribe, resubscribe, suppress (a bounce)\n"
    "# or unsuppress, newest last.\n"
    "# Sends skip an address that is unsubscribed or suppressed here. Append only: keep it with\n"
    "# the state's backups.\n"
)
STOPS, STARTS = {"unsubscribe", "suppress"}, {"resubscribe", "unsuppress"}


def journal_path(state_path: Path) -> Path:
    """`.digest/state.db` -> `.digest/state.suppressions.txt`."""
    return state_path.with_name(f"{state_path.stem}.suppressions.txt")


def append(path: Path, action: str, email: str, via: str, at: datetime) -> None:
    """Add one event, on disk before this returns (an unsubscribe is a promise)."""
    append_all(path, [(action, email, via, at)])


def append_all(path: Path, events: list[tuple[str, str, str, datetime]]) -> None:
    """Add events (action, email, via, at) in one write and one fsync: a batch of bounces."""
    if not events:
        return
    text = ""
    for action, email, via, at in events:
        assert action in STOPS | STARTS
        text += f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}\t{action}\t{email.strip()}\t{via}\n"
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


def suppressed(path: Path) -> frozenset[str]:
    """The addresses (casefolded) whose last event stops their digests. Unreadable lines are
    skipped: the journal is a safety net, the state holds the full record."""
    stopped: dict[str, set[str]] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return frozenset()
    for line in text.splitlines():
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
