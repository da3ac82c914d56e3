"""The run's record of each delivery: pending before the message leaves, sent or failed after.

Pending rows are written `WRITE_BATCH` at a time, before any of them is handed over (a
pending row that never left is simply sent next run). Results are written in the same
transaction as the next batch, or sooner: once `WRITE_BATCH` have come back, and whenever the
loop waits for a connection.

Each acceptance is also written, the moment the server's 250 arrives, to an append-only
acceptance log beside the state (`AcceptanceLog`): one short line, one write, which a kill
cannot lose. The next run folds the log into the state before anything else, so a run killed
with acceptances not yet in SQLite resends only the message in flight on each connection.
With a PostgreSQL state the acceptance goes to the database itself, at once, without waiting
for its answer (`AcceptanceWriter`: the delivery turns `sent` in one pipelined UPDATE), so a
host that takes a dead host's batch over finds it recorded. Before results are written and
reported, the journal asks which the server answered; the batch's write leaves those alone.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..delivery import Job
from ..state import Delivery, Finished, Planned, State
from .report import Outcome

if TYPE_CHECKING:
    from ..state import AcceptanceWriter

ACCEPTED_SUFFIX = ".accepted"

WRITE_BATCH = 32  # deliveries per state transaction
FOLD_BATCH = 10_000  # acceptances folded into the state per transaction


class Journal:
    """Records a run's deliveries in the state; reports each outcome once it is recorded."""

    def __init__(
        self,
        state: State,
        run_id: int,
        pending: dict[str, Delivery],
        clock: Callable[[], datetime],
        emit: Callable[[Outcome], None],
    ) -> None:
        self.state, self.run_id, self.pending = state, run_id, pending
        self.clock, self.emit = clock, emit
        self.returned: list[tuple[Finished, Outcome]] = []  # results not recorded yet
        # With PostgreSQL the database itself keeps the acceptances (several hosts, one run).
        self.log: AcceptanceLog | AcceptanceWriter
        if state.shared:
            from ..state import AcceptanceWriter

            self.log = AcceptanceWriter(state.target, run_id)  # type: ignore[arg-type]
        else:
            self.log = AcceptanceLog(acceptance_log_path(state.path))

    def accepted(self, job: Job, attempts: int) -> None:
        """Called in the sending thread the moment the server accepts a message."""
        self.log.write(job.key, attempts)

    def plan(self, planned: Sequence[Planned]) -> list[tuple[int, bool]]:
        """Record these as pending (with the results that came back meanwhile). Returns each
        one's delivery id and whether its row is new (a killed run's pending row is reused)."""
        keys = self.state.begin_deliveries(
            self.run_id, planned, self.clock(), self.pending, finished=self._unrecorded()
        )
        self._report()
        return keys

    def forget(self, keys: Sequence[tuple[int, bool]]) -> None:
        """Messages that never left: their new pending rows go, so the next run builds them
        afresh. Not in a run shared between hosts: a host that took this one's batch over
        may be resending those rows already; left pending, they go out once, as they were."""
        if not self.state.shared:
            self.state.forget_deliveries([key for key, new in keys if new])

    def result(self, finished: Finished, outcome: Outcome) -> None:
        self.returned.append((finished, outcome))
        if len(self.returned) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the results that came back (with nothing else to write), then report them."""
        if self.returned:
            self.state.finish_deliveries(self._unrecorded(), self.clock())
        self._report()

    def _unrecorded(self) -> list[Finished]:
        """The results that came back, less the acceptances recorded as they came."""
        accepted = [r.delivery_id for r, _ in self.returned if r.status == "sent"]
        recorded = self.log.recorded(accepted) if accepted else set()
        return [
            r for r, _ in self.returned if not (r.status == "sent" and r.delivery_id in recorded)
        ]

    def close(self) -> None:
        self.log.close()

    def _report(self) -> None:
        for _, outcome in self.returned:
            self.emit(outcome)
        self.returned.clear()


class NoJournal:
    """A test send (`--to`): nothing is recorded; outcomes are reported as they come back."""

    def __init__(self, emit: Callable[[Outcome], None]) -> None:
        self.emit = emit
        self.numbers = itertools.count(1)

    def plan(self, planned: Sequence[Planned]) -> list[tuple[int, bool]]:
        return [(next(self.numbers), True) for _ in planned]

    def forget(self, keys: Sequence[tuple[int, bool]]) -> None:
        pass

    def result(self, finished: Finished, outcome: Outcome) -> None:
        self.emit(outcome)

    accepted = None  # nothing to write down

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def acceptance_log_path(state_path: Path) -> Path:
    """`.digest/state.db` -> `.digest/state.accepted`."""
    return state_path.with_name(state_path.stem + ACCEPTED_SUFFIX)


class AcceptanceLog:
    """Appends `delivery id, attempts` per accepted message: one write(2) each, atomic with
    O_APPEND, so worker processes share the file and a SIGKILL loses nothing written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, delivery_id: int, attempts: int) -> bool:
        """False: written to the log, not recorded in the state yet."""
        os.write(self.fd, f"{delivery_id}\t{attempts}\n".encode())
        return False

    def recorded(self, delivery_ids: Iterable[int]) -> set[int]:
        """None: the batch's write records them (the log is folded only after a kill)."""
        return set()

    def close(self) -> None:
        os.close(self.fd)


def fold_acceptances(state: State) -> int:
    """Mark sent what the acceptance log says was accepted but the state had not recorded
    (a run was killed), then empty the log. Run under the send lock, before anything else.
    Returns how many deliveries it marked sent.

    The log holds a line for every message of the last run (a million at a million
    subscribers), so it is read and folded `FOLD_BATCH` lines at a time; folding again after
    a kill part-way changes nothing (only unfinished deliveries are marked)."""
    path = acceptance_log_path(state.path)
    try:
        log = path.open(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return 0
    marked = 0
    with log:
        accepted: list[tuple[int, int]] = []
        for line in log:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():  # a torn last line
                accepted.append((int(parts[0]), int(parts[1])))
            if len(accepted) >= FOLD_BATCH:
                marked += state.mark_accepted(accepted)
                accepted.clear()
        marked += state.mark_accepted(accepted)
    path.write_bytes(b"")
    return marked
