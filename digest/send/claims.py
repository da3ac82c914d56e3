"""One process's part of a run shared between hosts (a PostgreSQL state): the subscribers of
the batches it claims, one batch at a time, and the bookkeeping that marks a batch done.

`Claims` is what `loop.deliver` iterates over instead of a send list: it claims a batch,
yields its subscribers, and claims the next when asked for more. `count(outcome)` sees every
outcome once it is recorded; when each subscriber of a batch has one, the batch is done. The
lease on the batches it holds is renewed every third of a lease; a batch lost meanwhile (this
process stalled past its lease and another took it over) yields nothing more here.

A batch someone held before (they died, or stopped) is taken over: subscribers this run
already recorded (each acceptance is recorded as it arrives) are counted as they were, not
sent again; their pending rows are resent as they were (the composer reads pending rows with
each batch of histories).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from ..errors import StateError
from ..models import Subscriber
from ..settings import PostgresState, Settings
from ..state import SharedRuns, State, holder_id
from ..state.shared_runs import Claim
from .report import Outcome

BATCH_SIZE = 500  # subscribers per claim, at most
WRITER_POLL = 0.05  # seconds between looks for the next batch while the list is written


def batch_size(subscribers: int) -> int:
    """About a fortieth of the list, 20 to 500: small lists still spread over hosts and
    worker processes, large ones cost one claim per 500."""
    return max(20, min(BATCH_SIZE, subscribers // 40))


@dataclass
class _Held:
    size: int
    emails: set[str]
    counts: dict[str, int] = field(default_factory=lambda: {"sent": 0, "failed": 0, "skipped": 0})
    seen: int = 0


STATUS = {"sent": "sent", "failed": "failed", "uncertain": "failed", "skipped": "skipped"}


class Claims:
    def __init__(
        self,
        state: State,
        run_id: int,
        holder: str,
        lease: timedelta,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runs, self.run_id, self.holder, self.lease = SharedRuns(state), run_id, holder, lease
        self.clock = clock
        self.held: dict[int, _Held] = {}
        self.batch_of: dict[str, int] = {}  # email -> batch, for the batches held
        self.renewed = clock()
        self.done = 0  # batches this process completed
        self.lost = False  # a batch was taken over while this process held it
        self.should_stop: Callable[[], bool] = lambda: False

    def __iter__(self) -> Iterator[Subscriber]:
        self.runs.release_dead_local_holders(self.run_id)
        while (claim := self._next_claim()) is not None:
            rows = self.runs.batch(self.run_id, claim.batch)
            if len(rows) != claim.size:  # the server lost the run's list (a crash)
                raise ListLost(self.run_id)
            held = _Held(claim.size, {row["email"] for row in rows})
            self.held[claim.batch] = held
            for email in held.emails:
                self.batch_of[email] = claim.batch
            recorded = self._taken_over(rows) if claim.taken_over else {}
            for status in recorded.values():
                held.counts[STATUS[status]] += 1
                held.seen += 1
            self._complete_if_done(claim.batch)
            for row in rows:
                if row["email"] in recorded:
                    continue
                self.keep_alive()
                if claim.batch not in self.held:  # lost to another host
                    break
                yield Subscriber(**_fields(row))

    def _next_claim(self) -> Claim | None:
        """The next free batch; while the opener still writes the list and none is free,
        the next it writes (None once there is none to wait for, or when stopping)."""
        while (claim := self.runs.claim(self.run_id, self.holder, self.lease)) is None:
            if self.should_stop() or self.runs.writing(self.run_id) != "live":
                return None
            self.keep_alive()
            time.sleep(WRITER_POLL)
        return claim

    def _taken_over(self, rows: list[dict[str, object]]) -> dict[str, str]:
        return self.runs.finished_in_run(self.run_id, [str(r["email"]) for r in rows])

    def keep_alive(self) -> None:
        """Renew the leases held, every third of a lease; drop batches lost meanwhile."""
        now = self.clock()
        if now - self.renewed < self.lease.total_seconds() / 3:
            return
        self.renewed = now
        still = self.runs.renew(self.run_id, self.holder, list(self.held), self.lease)
        for batch in set(self.held) - still:
            self.lost = True
            self._forget(batch)

    def lapsed(self) -> bool:
        """Whether this process must stop handing messages over: it stalled past its lease
        (frozen, or cut off from the database) and another took a batch of it over. Checked
        before each message; asks the database only once half a lease went by unrenewed."""
        if self.clock() - self.renewed >= self.lease.total_seconds() / 2:
            self.renewed = float("-inf")
            self.keep_alive()
        return self.lost

    def stopping(self, should_stop: Callable[[], bool]) -> Callable[[], bool]:
        self.should_stop = should_stop  # also while waiting for the list to be written
        return lambda: should_stop() or self.lapsed()

    def count(self, outcome: Outcome) -> None:
        """An outcome recorded: counts towards its batch, which is done with its last."""
        batch = self.batch_of.get(outcome.email)
        held = self.held.get(batch) if batch is not None else None
        if held is None or batch is None:
            return
        held.counts[STATUS.get(outcome.status, "skipped")] += 1
        held.seen += 1
        self._complete_if_done(batch)
        self.keep_alive()

    def _complete_if_done(self, batch: int) -> None:
        held = self.held[batch]
        if held.seen >= held.size:
            self.runs.complete(self.run_id, batch, self.holder, held.counts)
            self.done += 1
            self._forget(batch)

    def _forget(self, batch: int) -> None:
        held = self.held.pop(batch, None)
        if held is not None:
            for email in held.emails:
                self.batch_of.pop(email, None)

    def counting(self, emit: Callable[[Outcome], None]) -> Callable[[Outcome], None]:
        def both(outcome: Outcome) -> None:
            emit(outcome)
            self.count(outcome)

        return both

    def release(self) -> None:
        """Stopping: give back what is held, so another host takes it at once."""
        self.runs.release(self.run_id, self.holder)
        self.held.clear()
        self.batch_of.clear()


class ListLost(StateError):
    def __init__(self, run_id: int) -> None:
        super().__init__(
            f"the list of run {run_id} is gone from the database (its server restarted)",
            hint="run the send again: a new run checks the list again and repeats nothing",
        )


def _fields(row: dict[str, object]) -> dict[str, object]:
    """A subscriber's fields as JSON keeps them: lists back to tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}


@contextlib.contextmanager
def claiming(state: State, settings: Settings, run_id: int | None) -> Iterator[Claims]:
    """This process's claims on the shared run; what it still holds when it stops (a stop
    request, an abort, an error) is given back, so another host takes it at once."""
    assert run_id is not None and isinstance(settings.state, PostgresState)
    state.relax_durability()
    claims = Claims(state, run_id, holder_id(), settings.state.lease)
    try:
        yield claims
    finally:
        claims.release()
