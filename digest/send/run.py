"""One run: pick up -> tag -> select -> render -> deliver -> record.

Input is checked before anything is sent: bad settings, subscribers or templates raise an
InputError and nothing goes out. A large run is shared between worker processes
(`processes`); a small one runs here (`loop.deliver_share`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from ..clock import utcnow
from ..settings import Settings
from ..state import State, send_lock
from ..subscribers import SendList
from .inputs import load_inputs
from .loop import deliver_share
from .pickup import pick_up
from .processes import deliver_in_processes, worker_count
from .report import Abort, NoProgress, Outcome, Progress, SendReport


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
    A failure no message can get past (authentication, TLS, unreachable server) stops the run
    and is in `report.aborted`. With `dry_run` nothing is sent or recorded; with `to` every
    digest goes to that address as a test and nothing is recorded.
    """
    progress = progress or NoProgress()
    inputs = load_inputs(settings, keep_sources=False, with_subscribers=False)
    now = now or clock()
    recording = not dry_run and to is None
    with (
        SendList.build(settings.subscribers, inputs.taxonomy, settings.state, only) as send_list,
        send_lock(settings.state, wait=lock_wait),
        State(settings.state) as state,
    ):
        pickup = pick_up(settings, state, inputs.taxonomy, now)
        secret, _ = state.token_secret(settings.token_secret_env)
        run_id = state.start_run(kind, now, due_at) if recording else None
        report = SendReport(run_id=run_id, pickup=pickup)

        def emit(outcome: Outcome) -> None:
            report.add(outcome)
            progress.advance(outcome)

        progress.start(len(send_list))
        share = dict(run_id=run_id, to=to, emit=emit, should_stop=should_stop)
        try:
            workers = worker_count(settings, dry_run, len(send_list))
            if workers > 1:
                abort = deliver_in_processes(
                    settings, workers, send_list.path, now=now, warn=report.warn, **share
                )
            else:
                subscribers = send_list.read()
                abort = deliver_share(
                    inputs,
                    state,
                    secret,
                    subscribers,
                    now=now,
                    warn=report.warn,
                    **share,
                    dry_run=dry_run,
                    clock=clock,
                )
            report.abort(abort)
        except BaseException as exc:  # Ctrl-C or a bug: the run must not be recorded as done
            report.abort(Abort(f"interrupted: {type(exc).__name__}"))
            raise
        finally:
            if run_id is not None:
                _finish_run(state, run_id, report, clock())
    return report


def _finish_run(state: State, run_id: int, report: SendReport, now: datetime) -> None:
    status = "aborted" if report.aborted else ("failed" if report.failed else "ok")
    state.finish_run(
        run_id,
        now,
        status,
        report.count("sent"),
        report.count("failed"),
        report.count("skipped"),
        note=report.aborted,
    )
