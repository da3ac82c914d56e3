"""The run's record of each delivery: pending before the message leaves, sent or failed after.

Pending rows are written `WRITE_BATCH` at a time, before any of them is handed over (a
pending row that never left is simply sent next run). Results are written in the same
transaction as the next batch, or sooner: once `WRITE_BATCH` have come back, and whenever the
loop waits for a connection. So an accepted message is recorded within the time it takes to
compose one batch, and a crash resends at most about a batch, with the same Message-ID.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import datetime

from ..state import Delivery, Finished, State
from .report import Outcome

WRITE_BATCH = 32  # deliveries per state transaction

Planned = tuple[str, str, tuple[str, ...]]  # (subscriber, Message-ID, item ids)


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

    def plan(self, planned: Sequence[Planned]) -> list[tuple[int, bool]]:
        """Record these as pending (with the results that came back meanwhile). Returns each
        one's delivery id and whether its row is new (a killed run's pending row is reused)."""
        keys = self.state.begin_deliveries(
            self.run_id,
            planned,
            self.clock(),
            self.pending,
            finished=[f for f, _ in self.returned],
        )
        self._report()
        return keys

    def forget(self, keys: Sequence[tuple[int, bool]]) -> None:
        """Messages that never left: their new pending rows go, so the next run builds them
        afresh."""
        self.state.forget_deliveries([key for key, new in keys if new])

    def result(self, finished: Finished, outcome: Outcome) -> None:
        self.returned.append((finished, outcome))
        if len(self.returned) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the results that came back (with nothing else to write), then report them."""
        if self.returned:
            self.state.finish_deliveries([f for f, _ in self.returned], self.clock())
        self._report()

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

    def flush(self) -> None:
        pass
