"""A new shared run's list written into the database while the run is already sending.

Writing a million subscribers takes longer than the first message may wait, so the host that
opens a run makes it known at once (`SharedRuns.publish`, with the batch `WRITING` held) and
this thread writes the checked list a few batches at a time, each in a transaction of its own:
every host, this one's workers included, claims a batch as soon as it is written. When the
whole list is written the `WRITING` batch goes and the run can end. If the writing fails, or
the opener dies, that batch lapses: the hosts finish what was written and stop, and the next
send opens a new run (whoever was sent is not sent again).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

from ..models import Subscriber
from ..settings import PostgresState
from ..state import SharedRuns, State, holder_id
from ..subscribers import SendList

FIRST_WRITE = 1  # batches in the first transaction: the first message waits for it alone
LATER_WRITES = 4  # batches in each later one (a few MB of rows held at a time)
_FIELDS = tuple(f.name for f in fields(Subscriber))


class ListWriter(threading.Thread):
    """Writes the send list at `path` (which it removes when done) as run `run_id`'s list."""

    def __init__(self, target: PostgresState, run_id: int, path: Path, batch_size: int) -> None:
        super().__init__(name=f"digest-run-{run_id}-list", daemon=True)
        self.target, self.run_id, self.path = target, run_id, path
        self.batch_size = batch_size
        self.holder = holder_id()  # holds the WRITING batch
        self.lease: timedelta = target.lease
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with (
                State(self.target) as state,
                contextlib.closing(SendList.open(self.path)) as listed,
            ):
                self._write(SharedRuns(state), listed)
        except BaseException as exc:  # reported by `finish`; the run is left to end
            self.error = exc
            with contextlib.suppress(Exception), State(self.target) as state:
                SharedRuns(state).stopped_writing(self.run_id)
        finally:
            self.path.unlink(missing_ok=True)

    def _write(self, runs: SharedRuns, listed: SendList) -> None:
        rows: list[str] = []
        first, limit = 0, FIRST_WRITE * self.batch_size
        for row in _rows(listed):
            rows.append(row)
            if len(rows) >= limit:
                if self.stop.is_set():
                    raise Stopped
                runs.add(self.run_id, rows, first, self.batch_size, self.lease)
                first, limit = first + len(rows), LATER_WRITES * self.batch_size
                rows = []
        if rows:
            runs.add(self.run_id, rows, first, self.batch_size, self.lease)
        runs.written(self.run_id)

    def finish(self) -> BaseException | None:
        """Stop writing if it still is (this host stops), wait for it; what went wrong."""
        self.stop.set()
        self.join()
        return None if isinstance(self.error, Stopped) else self.error


class Stopped(Exception):
    """The host stopped before its run's list was all written."""


def _rows(listed: SendList) -> Iterator[str]:
    """Each subscriber's fields as JSON (not `asdict`, which deep-copies: 18 µs a row)."""
    encode = json.JSONEncoder(ensure_ascii=False).encode
    for subscriber in listed.read():
        yield encode({name: getattr(subscriber, name) for name in _FIELDS})
