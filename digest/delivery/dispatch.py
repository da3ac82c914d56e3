"""Hand finished messages to the senders: one or more connections, a rate limit, retries.

The caller (the pipeline) records each delivery as pending, submits it here and records the
result it gets back; nothing here touches the state. Workers are threads, each with its own
connection; the queue between them is short, so a run never holds more than a few messages.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import (
    DeliveryConfigError,
    DeliveryError,
    ServerUnavailableError,
    UncertainDeliveryError,
)
from .envelope import Envelope
from .sender import LooksAhead, Sender, send_with_retries


class NextSlot(Protocol):
    """When the next message may go: a float and its lock. `multiprocessing.Value("d")` is
    one, shared by the worker processes of a run."""

    value: float

    def get_lock(self) -> Any: ...


class _LocalSlot:
    def __init__(self) -> None:
        self.value = 0.0
        self._lock = threading.Lock()

    def get_lock(self) -> threading.Lock:
        return self._lock


class RateLimit:
    """At most `per_second` and `per_minute` messages, shared by every connection (and, with
    a `shared` slot, by every process of the run: time.monotonic is the same clock in all)."""

    def __init__(
        self,
        per_second: float | None,
        per_minute: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        shared: NextSlot | None = None,
    ) -> None:
        self.intervals = [1.0 / per_second] if per_second else []
        if per_minute:
            self.intervals.append(60.0 / per_minute)
        self.interval = max(self.intervals, default=0.0)
        self.clock, self.sleep = clock, sleep
        self.next_at: NextSlot = shared if shared is not None else _LocalSlot()

    def wait(self) -> None:
        """Space messages evenly at the strictest of the two rates."""
        if not self.interval:
            return
        with self.next_at.get_lock():
            now = self.clock()
            at = max(now, self.next_at.value)
            self.next_at.value = at + self.interval
        if at > now:
            self.sleep(at - now)


@dataclass
class Job:
    key: int  # the delivery id (or any key the caller uses to match the result)
    recipient: str
    data: bytes
    sender: str | None = None  # this message's envelope sender (VERP); None: the run's


@dataclass
class Result:
    job: Job
    ok: bool
    attempts: int
    error: DeliveryError | None = None
    withdrawn: bool = False  # not sent: the caller withdrew it before its turn

    @property
    def fatal(self) -> bool:
        """No message can go out now: the run stops."""
        return isinstance(self.error, DeliveryConfigError | ServerUnavailableError)

    @property
    def uncertain(self) -> bool:
        return isinstance(self.error, UncertainDeliveryError)


_STOP = object()
NOT_ATTEMPTED = "not attempted: the run stopped on an earlier delivery error"


class Dispatcher:
    """`connections` worker threads, each with a sender from `make_sender`."""

    POLL = 0.05  # seconds

    def __init__(
        self,
        make_sender: Callable[[], Sender],
        envelope_from: str,
        connections: int = 1,
        retries: int = 5,
        backoff: float = 2.0,
        rate: RateLimit | None = None,
        on_accepted: Callable[[Job, int], None] | None = None,
        withdrawn: Callable[[Job], bool] | None = None,
    ) -> None:
        self.envelope_from, self.retries, self.backoff = envelope_from, retries, backoff
        # Told in the sending thread the moment a server accepts a message, before anything
        # else happens: the caller writes it down where a kill cannot lose it.
        self.on_accepted = on_accepted
        self.withdrawn = withdrawn  # asked of each job just before it is sent
        self.rate = rate or RateLimit(None, None)
        self.jobs: queue.Queue[object] = queue.Queue(maxsize=connections * 2)
        self.results: queue.Queue[Result] = queue.Queue()
        self.aborted = threading.Event()
        self.in_flight = 0
        self.threads = [
            threading.Thread(
                target=self._work, args=(make_sender,), daemon=True, name=f"digest-sender-{n}"
            )
            for n in range(connections)
        ]
        for thread in self.threads:
            thread.start()

    def _work(self, make_sender: Callable[[], Sender]) -> None:
        senders: list[Sender] = []  # made on first use: a connection only when there is mail
        looks_ahead: list[Callable[[Envelope | None], None] | None] = []

        def sender() -> tuple[Sender, Callable[[Envelope | None], None] | None]:
            if not senders:
                made = make_sender()
                senders.append(made)
                # Asked once per connection: a runtime Protocol check costs microseconds.
                looks_ahead.append(made.expect_next if isinstance(made, LooksAhead) else None)
            return senders[0], looks_ahead[0]

        following: object = None  # a job taken early, its envelope sent with this one's data
        try:
            while True:
                job, following = following or self.jobs.get(), None
                if job is _STOP:
                    return
                assert isinstance(job, Job)
                if self.aborted.is_set():
                    self.results.put(Result(job, False, 0, DeliveryConfigError(NOT_ATTEMPTED)))
                    continue
                if self.withdrawn is not None and self.withdrawn(job):
                    self.results.put(Result(job, False, 0, withdrawn=True))
                    continue
                with contextlib.suppress(queue.Empty):
                    following = self.jobs.get_nowait()
                then = (
                    (following.sender or self.envelope_from, following.recipient)
                    if isinstance(following, Job)
                    else None
                )
                self.results.put(self._attempt(sender, job, then))
        finally:
            for made in senders:
                made.close()

    def _attempt(
        self,
        sender: Callable[[], tuple[Sender, Callable[[Envelope | None], None] | None]],
        job: Job,
        then: Envelope | None,
    ) -> Result:
        """Send one job with its retries; every outcome, a bug included, becomes its Result."""
        try:
            connection, expect_next = sender()
            self.rate.wait()
            if expect_next is not None:
                expect_next(then)
            attempts = send_with_retries(
                connection,
                job.sender or self.envelope_from,
                job.recipient,
                job.data,
                self.retries,
                self.backoff,
            )
        except (DeliveryConfigError, ServerUnavailableError) as exc:
            self.aborted.set()
            return Result(job, False, exc.attempts, exc)
        except DeliveryError as exc:
            return Result(job, False, exc.attempts, exc)
        except Exception as exc:  # never lose a job's result to a bug in a worker
            self.aborted.set()
            error = f"unexpected error while sending: {type(exc).__name__}: {exc}"
            return Result(job, False, 1, DeliveryConfigError(error))
        if self.on_accepted is not None:
            try:
                self.on_accepted(job, attempts)
            except Exception:  # accepted all the same; but no more go out unrecorded
                self.aborted.set()
        return Result(job, True, attempts)

    def submit(self, job: Job, waiting: Callable[[], None] = lambda: None) -> Iterator[Result]:
        """Queue a job (waiting while the queue is full); yields results ready meanwhile. Calls
        `waiting` every `POLL` seconds spent waiting, so the caller can do its bookkeeping."""
        while True:
            yield from self.ready()
            try:
                self.jobs.put(job, timeout=self.POLL)
                self.in_flight += 1
                return
            except queue.Full:
                waiting()

    def ready(self) -> Iterator[Result]:
        while True:
            try:
                result = self.results.get_nowait()
            except queue.Empty:
                return
            self.in_flight -= 1
            yield result

    def finish(self, waiting: Callable[[], None] = lambda: None) -> Iterator[Result]:
        """Wait for every submitted job; yields the remaining results, then stops the workers.
        Calls `waiting` every `POLL` seconds spent waiting."""
        while self.in_flight:
            try:
                result = self.results.get(timeout=self.POLL)
            except queue.Empty:
                waiting()
                continue
            self.in_flight -= 1
            yield result
        for _ in self.threads:
            self.jobs.put(_STOP)
        for thread in self.threads:
            thread.join()
