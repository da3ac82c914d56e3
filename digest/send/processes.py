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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import utcnow
from ..errors import DigestError
from ..models import Subscriber
from ..settings import Settings
from ..state import State
from ..subscribers import SendList
from ..taxonomy import Taxonomy, load_taxonomy
from .claims import claiming
from .inputs import Inputs, load_renderer
from .loop import deliver_share
from .report import Abort, Outcome

LARGE = 1_000_000


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


EARLY_BYTES = 1 << 20  # a subscribers file this large has workers started as it is checked


@contextlib.contextmanager
def early_workers(settings: Settings) -> Iterator[Workers | None]:
    """The worker processes a run of a large list will use, started now so that they are
    ready when the list has been checked (a million subscribers take seconds to check, and
    each worker a second or two to start); None when the run will likely need none."""
    try:
        large = settings.subscribers.stat().st_size >= EARLY_BYTES
    except OSError:
        large = False
    count = worker_count(settings, False, LARGE) if large else 1
    if count < 2:
        yield None
        return
    with Workers(settings, count) as workers:
        yield workers


def kept_for(early: Workers | None, workers: int) -> Workers | None:
    """The workers started early, if the run needs as many; else they are stopped at once
    (not the run they were started for, e.g. a short list) rather than kept waiting."""
    if early is not None and early.count != workers:
        early.close()
        return None
    return early


@dataclass(frozen=True)
class Go:
    """What a started worker waits for: the run to take part in, once the list is checked."""

    send_list: Path | None  # None: the batches of a shared run are claimed (PostgreSQL)
    run_id: int | None
    to: str | None
    now: datetime
    taxonomy: Taxonomy  # without its lexicon (see `inputs.light`): every item is tagged


class Workers:
    """`count` worker processes, started before the subscribers are checked so that their
    start-up (imports, settings, templates) overlaps the check; they wait for `run` and
    send nothing before it. Leaving the block without `run` (the list was not valid, or
    too short to share) stops them."""

    def __init__(self, settings: Settings, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.count = count
        self.messages: multiprocessing.Queue[tuple[str, Any]] = context.Queue()
        self.orders: multiprocessing.Queue[Go | None] = context.Queue()
        self.stop = context.Event()
        self.rate_slot = context.Value("d", 0.0)  # the rate limits hold for the run, not per worker
        total = settings.delivery.smtp.connections
        shards = [
            Shard(k, count, total // count + (1 if k < total % count else 0)) for k in range(count)
        ]
        self.processes = [
            context.Process(
                target=_shard_main,
                name=f"digest-worker-{shard.index}",
                args=(settings, shard, self.orders, self.messages, self.stop, self.rate_slot),
            )
            for shard in shards
        ]
        self.ran = self.closed = False
        for process in self.processes:
            process.start()

    def run(
        self,
        go: Go,
        emit: Callable[[Outcome], None],
        warn: Callable[[str], None],
        should_stop: Callable[[], bool],
    ) -> Abort | None:
        """Each worker composes and sends its share of the subscribers over its share of the
        connections, recording into the same state; their outcomes are collected here."""
        self.ran = True
        for _ in self.processes:
            self.orders.put(go)
        return _collect(self.processes, self.messages, self.stop, emit, warn, should_stop)

    def close(self) -> None:
        """Stop the workers (waiting ones are told there is no run); once is enough."""
        if self.closed:
            return
        self.closed = True
        self.stop.set()
        if not self.ran:
            for _ in self.processes:
                self.orders.put(None)  # the workers are waiting for a run: there is none
        for process in self.processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def deliver_in_processes(
    settings: Settings,
    workers: int,
    go: Go,
    *,
    emit: Callable[[Outcome], None],
    warn: Callable[[str], None],
    should_stop: Callable[[], bool],
) -> Abort | None:
    """Run `workers` processes on the run `go` describes and collect their outcomes."""
    with Workers(settings, workers) as started:
        return started.run(go, emit, warn, should_stop)


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
    settings: Settings,  # as the parent read and checked them (not read again)
    shard: Shard,
    orders: Any,
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
        load_renderer(settings)  # imports and templates read while the parent checks the list
        go: Go | None = orders.get()
        if go is None:
            return  # the list was not valid, or short enough for one process
        inputs = Inputs(settings, go.taxonomy, [], load_renderer(settings, go.taxonomy.names))
        with contextlib.ExitStack() as stack:
            state = stack.enter_context(State(settings.state))
            secret, _ = state.token_secret(settings.token_secret_env)
            subscribers, emit, should_stop = _share(
                stack, state, settings, go, shard, emit, stop.is_set
            )
            aborted = deliver_share(
                inputs,
                state,
                secret,
                subscribers,
                now=go.now,
                warn=lambda warning: messages.put(("warning", warning)),
                run_id=go.run_id,
                dry_run=False,
                to=go.to,
                emit=emit,
                should_stop=should_stop,
                clock=utcnow,
                connections=shard.connections,
                rate_slot=rate_slot,
                full_taxonomy=lambda: load_taxonomy(settings.taxonomy),
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
    go: Go,
    shard: Shard,
    emit: Callable[[Outcome], None],
    stop: Callable[[], bool],
) -> tuple[Iterable[Subscriber], Callable[[Outcome], None], Callable[[], bool]]:
    """A worker's subscribers (its shard of the send list, or the batches it claims of a
    shared run), and its `emit` and `should_stop` to match."""
    if go.send_list is None:
        claims = stack.enter_context(claiming(state, settings, go.run_id))
        return claims, claims.counting(emit), claims.stopping(stop)
    send_list = stack.enter_context(contextlib.closing(SendList.open(go.send_list)))
    return send_list.read(shard.index, shard.count), emit, stop
