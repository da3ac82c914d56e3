"""One run: pick up -> tag -> select -> render -> deliver -> record.

Input is checked before anything is sent: bad settings, subscribers or templates raise an
InputError and nothing goes out. With a PostgreSQL state the run may be shared with other
hosts (`shared`). A large run is shared between worker processes
(`processes`); a small one runs here (`loop.deliver_share`). A dry run and a test send
(`to`) only read the state: they record nothing, not even the items they picked up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime

from ..clock import utcnow
from ..compose import load_signer
from ..settings import PostgresState, Settings
from ..state import State, reading, send_lock
from ..subscribers import SendList
from .composer import Composer
from .inputs import Inputs, light, load_inputs
from .journal import fold_acceptances
from .loop import deliver, deliver_share
from .pickup import pick_up, preview_items
from .previews import NO_SECRET
from .processes import (
    Go,
    Workers,
    deliver_in_processes,
    early_workers,
    kept_for,
    worker_count,
)
from .report import Abort, NoProgress, Outcome, Progress, SendReport
from .shared import send_shared


def send(
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    only: Iterable[str] = (),
    to: str | None = None,
    progress: Progress | None = None,
    lock_wait: float = 0.0,
    kind: str = "manual",
    due_at: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    should_stop: Callable[[], bool] = lambda: False,
) -> SendReport:
    """Pick up new items and deliver every subscriber's digest.

    Input problems raise before anything is sent. Per-subscriber failures are in the report.
    A failure no message can get past (authentication, TLS, an unreachable server) stops the
    run and is in `report.aborted`. With `dry_run` nothing is sent or recorded; with `to`
    every digest goes to that address as a test and nothing is recorded.
    """
    progress = progress or NoProgress()
    recorded = not dry_run and to is None
    if not dry_run:  # over SMTP, a configured DKIM without its key sends nothing (exit 2)
        load_signer(settings.dkim, required=settings.delivery.method == "smtp")
    with contextlib.ExitStack() as stack:
        # Worker processes for a long list start first: their start-up overlaps the check.
        early = stack.enter_context(early_workers(settings)) if recorded and not only else None
        inputs = load_inputs(settings, keep_sources=False, with_subscribers=False)
        now = now or clock()
        if recorded and isinstance(settings.state, PostgresState):
            return send_shared(
                inputs, only=only, kind=kind, due_at=due_at, now=now, lock_wait=lock_wait,
                progress=progress, clock=clock, should_stop=should_stop, early=early,
            )  # fmt: skip
        listed = stack.enter_context(
            SendList.build(settings.subscribers, inputs.taxonomy, settings.state, only)
        )
        if not recorded:
            return _without_recording(inputs, listed, now, dry_run, to, progress, should_stop)
        with send_lock(settings.state, wait=lock_wait), State(settings.state) as state:
            fold_acceptances(state)  # what a killed run had accepted but not recorded
            pickup = pick_up(settings, state, inputs.taxonomy, now)
            report = SendReport(run_id=state.start_run(kind, now, due_at), pickup=pickup)
            try:
                abort = _deliver(
                    inputs, state, listed, report, progress, (now, clock), should_stop, early
                )
                report.abort(abort)
                fold_acceptances(state)  # all recorded: the log starts empty next time
            except BaseException as exc:  # Ctrl-C or a bug: not recorded as done
                report.abort(Abort(f"interrupted: {type(exc).__name__}"))
                raise
            finally:
                _finish_run(state, report, clock())
    return report


def _deliver(
    inputs: Inputs,
    state: State,
    listed: SendList,
    report: SendReport,
    progress: Progress,
    times: tuple[datetime, Callable[[], datetime]],
    should_stop: Callable[[], bool],
    early: Workers | None,
) -> Abort | None:
    """The recorded run's deliveries, in this process or shared between worker processes
    (those started `early`, if they are as many)."""
    settings = inputs.settings
    now, clock = times

    def emit(outcome: Outcome) -> None:
        report.add(outcome)
        progress.advance(outcome)

    progress.start(len(listed))
    share = dict(run_id=report.run_id, to=None, emit=emit, should_stop=should_stop)
    secret, _ = state.token_secret(settings.token_secret_env)  # made once, before any worker
    workers = worker_count(settings, False, len(listed))
    early = kept_for(early, workers)
    if workers > 1:
        go = Go(listed.path, report.run_id, None, now, light(inputs.taxonomy))
        if early is not None:
            return early.run(go, emit, report.warn, should_stop)
        return deliver_in_processes(
            settings, workers, go, emit=emit, warn=report.warn, should_stop=should_stop
        )
    subscribers = listed.read()
    return deliver_share(
        inputs,
        state,
        secret,
        subscribers,
        now=now,
        warn=report.warn,
        clock=clock,
        dry_run=False,
        **share,
    )


def _without_recording(
    inputs: Inputs,
    listed: SendList,
    now: datetime,
    dry_run: bool,
    to: str | None,
    progress: Progress,
    should_stop: Callable[[], bool],
) -> SendReport:
    """A dry run or a test send: built as the real run would be, from the state as it is,
    which is only read (no pickup recorded, no token secret made, no lock taken)."""
    settings = inputs.settings
    with reading(settings.state) as state:
        items, pickup = preview_items(settings, inputs.taxonomy, state, now)
        peeked = state.peek_token_secret(settings.token_secret_env) if state else None
        composer = Composer(inputs, state, items, peeked or NO_SECRET, now)
        report = SendReport(run_id=None, pickup=pickup)
        for warning in composer.warnings:
            report.warn(warning)

        def emit(outcome: Outcome) -> None:
            report.add(outcome)
            progress.advance(outcome)

        progress.start(len(listed))
        subscribers = listed.read()
        options = dict(run_id=None, dry_run=dry_run, to=to, emit=emit, should_stop=should_stop)
        report.abort(deliver(settings, composer, state, subscribers, clock=utcnow, **options))
    return report


def _finish_run(state: State, report: SendReport, now: datetime) -> None:
    assert report.run_id is not None
    status = "aborted" if report.aborted else ("failed" if report.failed else "ok")
    state.finish_run(
        report.run_id,
        now,
        status,
        report.count("sent"),
        report.count("failed"),
        report.count("skipped"),
        note=report.aborted,
    )
