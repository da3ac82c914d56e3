"""Readers who unsubscribe while a run is under way: their messages not yet handed to the
server are withdrawn, so the page that said "no more digests" stays true.

The state (and the suppression journal beside it) is read again at most once a second, in the
thread that owns the state's connection; the sending threads only look the address up in the
set it leaves behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from ..models import address_key
from ..state import State, WebChanges, suppressions


class Withdrawals:
    EVERY = 1.0  # seconds between two looks at the state

    def __init__(
        self,
        state: State,
        since: datetime,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.changes, self.since, self.clock = WebChanges(state), since, clock
        self.journal = suppressions.journal_path(state.path)
        journal = suppressions.journal_of(state)  # with PostgreSQL, also the database's lines
        self.shared = journal if isinstance(journal, suppressions.SharedJournal) else None
        self.journal_seen: tuple[int, int] | None = None
        self.keys: frozenset[str] = frozenset()
        self.looked = float("-inf")

    def refresh(self) -> None:
        """Read who unsubscribed since the run began, unless that was done under a second ago.
        Call it from the thread that opened the state."""
        now = self.clock()
        if now - self.looked < self.EVERY:
            return
        self.looked = now
        keys = set(self.changes.unsubscribed_since(self.since))
        try:
            info = self.journal.stat()
            seen: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            seen = None
        if seen is not None and seen != self.journal_seen:
            keys |= suppressions.suppressed(self.journal)
        elif self.journal_seen is not None:
            keys |= self.keys  # the journal did not change: what it said still holds
        self.journal_seen = seen
        if self.shared is not None:
            keys |= suppressions.suppressed(self.shared)
        self.keys = frozenset(keys)  # one assignment: the sending threads see old or new

    def withdrawn(self, email: str) -> bool:
        """Safe from any thread."""
        return address_key(email) in self.keys
