"""A send over a PostgreSQL state: several hosts on one run.

The first host to start opens the run: it picks up new items, checks the list (a `SendList`,
as on one host), makes the run known and writes the list into the database a few batches at a
time while the run sends (`list_writer`), so the first message never waits for a long list to
be written. A host that
starts while a run with the same aim is open (the same due time, the same `--only`) joins it
instead of waiting for a lock; a run with another aim is waited for (`--wait`) as the send
lock is waited for with SQLite. Every host then claims batches (`claims.Claims`), in worker
processes when the run is large, until none is left; one whose batches are all held by
others waits, and takes over those whose lease lapses. The last host out closes the run.

A run every host left (none renewed a claim for ten leases) is closed as abandoned by the
next send, which opens a new one: its pending rows are resent as they were.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from ..errors import LockedError
from ..settings import PostgresState
from ..state import SharedRuns, State, holder_id, suppressions
from ..state.shared_runs import ABANDONED_AFTER, OpenRun
from ..subscribers import SendList
from .claims import batch_size, claiming
from .inputs import Inputs, light
from .list_writer import ListWriter
from .loop import deliver_share
from .pickup import pick_up
from .processes import Go, Workers, deliver_in_processes, kept_for, worker_count
from .report import STOPPED, Abort, Outcome, PickupReport, Progress, SendReport

ALREADY_SENT = "already sent: a run with this due time finished"


WRITER_GONE = (
    "run {run_id}: the host that opened it stopped before its list was all written; "
    "the next send starts a new run (nobody already sent is sent again)"
)


@dataclass(frozen=True)
class Joined:
    run_id: int
    opened: bool
    opened_by: str
    subscribers: int
    pickup: PickupReport
    writer: ListWriter | None = None  # the opener's: writing the run's list


def run_signature(only: Iterable[str], due_at: str | None) -> str:
    """What a run sends: hosts with the same join one run."""
    wanted = sorted({o.casefold() for o in only})
    return hashlib.sha256(json.dumps([due_at, wanted]).encode()).hexdigest()[:16]


def send_shared(
    inputs: Inputs,
    *,
    only: Iterable[str],
    kind: str,
    due_at: str | None,
    now: datetime,
    lock_wait: float,
    progress: Progress,
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool],
    early: Workers | None = None,
) -> SendReport:
    """Open or join the shared run and send this host's share of it (in the worker processes
    started `early`, if it needs as many)."""
    settings = inputs.settings
    assert isinstance(settings.state, PostgresState)
    with State(settings.state) as state:
        joined = _open_or_join(inputs, state, list(only), kind, due_at, now, lock_wait)
        if joined is None:
            report = SendReport(run_id=None, pickup=PickupReport())
            report.warn(ALREADY_SENT)
            return report
        report = SendReport(run_id=joined.run_id, pickup=joined.pickup)
        if not joined.opened:
            report.warn(
                f"joined run {joined.run_id}, opened by {joined.opened_by}: this host sends "
                "its share of it"
            )
        try:
            times = (now, clock)
            abort = _deliver(inputs, state, joined, report, progress, times, should_stop, early)
            report.abort(_written(joined) or abort)
        except BaseException as exc:
            report.abort(Abort(f"interrupted: {type(exc).__name__}"))
            raise
        finally:
            _written(joined)  # stopped, if this host stops before the list is written
            _end(state, joined.run_id, report, clock())
    return report


def _open_or_join(
    inputs: Inputs,
    state: State,
    only: list[str],
    kind: str,
    due_at: str | None,
    now: datetime,
    lock_wait: float,
) -> Joined | None:
    """The run to work on: the open one with this aim, or a new one. None: the due time was
    sent already."""
    target = inputs.settings.state
    assert isinstance(target, PostgresState)
    runs = SharedRuns(state)
    signature = run_signature(only, due_at)
    deadline = time.monotonic() + lock_wait
    while True:
        current = runs.open_run()
        if current is not None and _abandoned(runs, current, target):
            runs.abandon(current.run_id, now, f"abandoned: no host worked on it for {current.idle}")
            continue
        if current is not None and current.signature == signature:
            return Joined(
                current.run_id, False, current.opened_by, current.subscribers, PickupReport()
            )
        if current is not None:
            if time.monotonic() >= deadline:
                raise LockedError(
                    f"another send is running on {target}: run {current.run_id}, opened by "
                    f"{current.opened_by}" + (f" for {current.due_at}" if current.due_at else ""),
                    hint="wait for it to finish, or pass --wait SECONDS; nothing was sent by "
                    "this run",
                )
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
            continue
        opened = _open(inputs, state, runs, signature, only, kind, due_at, now)
        if opened != "raced":
            return opened  # type: ignore[return-value]


def _abandoned(runs: SharedRuns, current: OpenRun, target: PostgresState) -> bool:
    if current.idle < ABANDONED_AFTER * target.lease:
        return False
    return runs.progress(current.run_id).held == 0


def _open(
    inputs: Inputs,
    state: State,
    runs: SharedRuns,
    signature: str,
    only: list[str],
    kind: str,
    due_at: str | None,
    now: datetime,
) -> Joined | None | str:
    """Pick up, check the list, and publish the run; "raced" when another host opened one
    meanwhile (join it), None when the due time was sent meanwhile."""
    settings = inputs.settings
    journal = suppressions.journal_of(state)
    with state.transaction():
        suppressions.restore_lines(journal)  # this host's lines a restored database lacks
    pickup = pick_up(settings, state, inputs.taxonomy, now)
    target = settings.state
    assert isinstance(target, PostgresState)
    listed = SendList.build(settings.subscribers, inputs.taxonomy, target, only)
    try:
        with state.transaction(lock="runs"):
            if runs.open_run() is not None:
                listed.remove()
                return "raced"
            if due_at is not None and due_at in state.completed_due_times():
                listed.remove()
                return None
            run_id = state.start_run(kind, now, due_at)
            count = len(listed)
            writer = ListWriter(target, run_id, listed.path, batch_size(count))
            runs.publish(run_id, signature, count, writer.batch_size, (writer.holder, target.lease))
    except BaseException:
        listed.remove()
        raise
    listed.close()
    writer.start()  # reads the list and removes it
    return Joined(run_id, True, holder_id(), count, pickup, writer)


def _deliver(
    inputs: Inputs,
    state: State,
    joined: Joined,
    report: SendReport,
    progress: Progress,
    times: tuple[datetime, Callable[[], datetime]],
    should_stop: Callable[[], bool],
    early: Workers | None,
) -> Abort | None:
    """Claim and send batches (here, or in worker processes: those started `early` the first
    time, if they are as many) until none is left; while other hosts hold the rest, wait, and
    take over what they let lapse."""
    now, clock = times
    settings = inputs.settings
    assert isinstance(settings.state, PostgresState)
    runs = SharedRuns(state)

    def emit(outcome: Outcome) -> None:
        report.add(outcome)
        progress.advance(outcome)

    progress.start(joined.subscribers)
    secret, _ = state.token_secret(settings.token_secret_env)
    workers = worker_count(settings, False, joined.subscribers)
    early = kept_for(early, workers)
    first = True
    while True:
        if not first:
            left = runs.progress(joined.run_id)
            if left.writing == "gone":
                return Abort(WRITER_GONE.format(run_id=joined.run_id))
            if left.undone == 0:
                return None
            if left.held == left.undone:  # others are on the rest: wait for them, or a lapse
                if should_stop():
                    return STOPPED
                time.sleep(min(1.0, max(0.1, left.wait)))
                continue
        first = False
        if workers > 1:
            go = Go(None, joined.run_id, None, now, light(inputs.taxonomy))
            if early is not None:
                abort, early = early.run(go, emit, report.warn, should_stop), None
            else:
                abort = deliver_in_processes(
                    settings, workers, go, emit=emit, warn=report.warn, should_stop=should_stop
                )
        else:
            with claiming(state, settings, joined.run_id) as claims:
                abort = deliver_share(
                    inputs, state, secret, claims, now=now, warn=report.warn, dry_run=False,
                    emit=claims.counting(emit), clock=clock, run_id=joined.run_id, to=None,
                    should_stop=claims.stopping(should_stop),
                )  # fmt: skip
        if abort is not None:
            return abort


def _written(joined: Joined) -> Abort | None:
    """Wait for the opener's list writer (told to stop if it still writes); its failure."""
    failed = joined.writer.finish() if joined.writer is not None else None
    if failed is None:
        return None
    return Abort(f"writing the list of run {joined.run_id} failed: {failed}")


def _end(state: State, run_id: int, report: SendReport, now: datetime) -> None:
    """Close the run when no batch is left; when this host stops early and no other holds a
    live claim, close it as aborted (the next send opens a new one)."""
    runs = SharedRuns(state)
    if report.aborted is None:
        runs.close_if_done(run_id, now)
    elif not runs.close_if_done(run_id, now):
        runs.close_aborted(run_id, now, report.aborted)
