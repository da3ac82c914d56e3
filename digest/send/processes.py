"""A large send shared between worker processes, one per SMTP connection up to the cores.

Threads would share one core under the GIL; processes do not. Each worker reads the
settings and items itself and its share of the checked subscribers from the run's `SendList`
(those whose preferences hash to it, so a shared rendering is made by one worker only),
composes, sends and records into the same SQLite state, and reports outcomes to the parent in
small batches. Workers die with the parent (PR_SET_PDEATHSIG), so none outlives the run that
holds the send lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import utcnow
from ..errors import DigestError
from ..models import Subscriber
from ..settings import Settings, load_settings
from ..state import State
from ..subscribers import SendList
from .claims import claiming
from .inputs import load_inputs
from .loop import deliver_share
from .report import Abort, Outcome


def worker_count(settings: Settings, dry_run: bool, subscribers: int) -> int:
    """Processes composing and sending side by side: one per SMTP connection, at most one per
    core (threads would share one core under the GIL). Small runs stay in one process."""
    if dry_run or settings.delivery.method != "smtp" or subscribers < 200:
        return 1
    return max(1, min(settings.delivery.smtp.connections, os.cpu_count() or 1))


@dataclass(frozen=True)
class Shard:
    """One worker's share of a run: see `SendList.read`."""

    index: int = 0
    count: int = 1
    connections: int | None = None


def deliver_in_processes(
    settings: Settings,
    workers: int,
    send_list: Path | None,
    *,
    run_id: int | None,
    to: str | None,
    now: datetime,
    emit: Callable[[Outcome], None],
    warn: Callable[[str], None],
    should_stop: Callable[[], bool],
) -> Abort | None:
    """Run `workers` processes, each composing and sending its share of the subscribers over
    its share of the connections, recording into the same state; collect their outcomes.
    Without a send list (a PostgreSQL state) each claims batches of the shared run."""
    context = multiprocessing.get_context("spawn")
    messages: multiprocessing.Queue[tuple[str, Any]] = context.Queue()
    stop = context.Event()
    rate_slot = context.Value("d", 0.0)  # the rate limits hold for the run, not per worker
    total = settings.delivery.smtp.connections
    shards = [
        Shard(k, workers, total // workers + (1 if k < total % workers else 0))
        for k in range(workers)
    ]
    processes = [
        context.Process(
            target=_shard_main,
            name=f"digest-worker-{shard.index}",
            args=(settings.path, shard, send_list, run_id, to, now, messages, stop, rate_slot),
        )
        for shard in shards
    ]
    for process in processes:
        process.start()
    try:
        return _collect(processes, messages, stop, emit, warn, should_stop)
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()


def _collect(
    processes: list[Any],
    messages: Any,
    stop: Any,
    emit: Callable[[Outcome], None],
    warn: Callable[[str], None],
    should_stop: Callable[[], bool],
) -> Abort | None:
    """What the workers report, until each has said it is done (or died without saying so)."""
    aborted: Abort | None = None
    running = len(processes)
    while running:
        if should_stop():
            stop.set()
        try:
            kind, payload = messages.get(timeout=0.2)
        except queue.Empty:
            if not any(p.is_alive() for p in processes):
                # A worker died without saying so: its pending rows are resent next run.
                return aborted or Abort("a worker process died; rerun to finish")
            continue
        if kind == "outcomes":
            for outcome in payload:
                emit(outcome)
        elif kind == "warning":
            warn(payload)
        elif kind == "done":
            running -= 1
            if payload and aborted is None:
                aborted = payload
                stop.set()  # a configuration failure in one worker stops them all
    return aborted


def _die_with_parent() -> None:
    """A worker must not outlive the run that holds the lock (Linux: PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def _shard_main(
    settings_path: Path,
    shard: Shard,
    send_list_path: Path,
    run_id: int | None,
    to: str | None,
    now: datetime,
    messages: Any,
    stop: Any,
    rate_slot: Any,
) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    batch: list[Outcome] = []
    last_flush = time.monotonic()

    def emit(outcome: Outcome) -> None:
        nonlocal last_flush
        batch.append(outcome)
        if len(batch) >= 200 or time.monotonic() - last_flush > 0.25 or outcome.error:
            messages.put(("outcomes", list(batch)))
            batch.clear()
            last_flush = time.monotonic()

    aborted: Abort | None = None
    try:
        settings = load_settings(settings_path)
        inputs = load_inputs(settings, keep_sources=False, with_subscribers=False)
        with contextlib.ExitStack() as stack:
            state = stack.enter_context(State(settings.state))
            secret, _ = state.token_secret(settings.token_secret_env)
            subscribers, emit, should_stop = _share(
                stack, state, settings, run_id, send_list_path, shard, emit, stop.is_set
            )
            aborted = deliver_share(
                inputs,
                state,
                secret,
                subscribers,
                now=now,
                warn=lambda warning: messages.put(("warning", warning)),
                run_id=run_id,
                dry_run=False,
                to=to,
                emit=emit,
                should_stop=should_stop,
                clock=utcnow,
                connections=shard.connections,
                rate_slot=rate_slot,
            )
    except DigestError as exc:
        aborted = Abort(str(exc), exc.exit_code)
    except Exception as exc:  # report, never hang the parent
        aborted = Abort(f"worker {shard.index} failed: {type(exc).__name__}: {exc}")
    finally:
        if batch:
            messages.put(("outcomes", list(batch)))
        messages.put(("done", aborted))


def _share(
    stack: contextlib.ExitStack,
    state: State,
    settings: Settings,
    run_id: int | None,
    send_list_path: Path | None,
    shard: Shard,
    emit: Callable[[Outcome], None],
    stop: Callable[[], bool],
) -> tuple[Iterable[Subscriber], Callable[[Outcome], None], Callable[[], bool]]:
    """A worker's subscribers (its shard of the send list, or the batches it claims of a
    shared run), and its `emit` and `should_stop` to match."""
    if send_list_path is None:
        claims = stack.enter_context(claiming(state, settings, run_id))
        return claims, claims.counting(emit), claims.stopping(stop)
    send_list = stack.enter_context(contextlib.closing(SendList.open(send_list_path)))
    return send_list.read(shard.index, shard.count), emit, stop
