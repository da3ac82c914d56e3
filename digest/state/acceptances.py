"""Each acceptance (a server's 250) written to a PostgreSQL state the moment it arrives, without
the sending thread waiting for the database's answer.

Each sending thread has a connection of its own in libpq's pipeline mode (`_Pipe`). An
acceptance is one prepared UPDATE (the delivery turns `sent`) and a Sync, which commits it on
its own (`synchronous_commit = off`: not waiting for the server's disk). `write` hands both
to the kernel and returns: the sending thread goes on to its next message while the server
commits. On loopback the bytes are in the server's socket by then, and on a network the
kernel sends them at once, so killing this process the next instant (SIGKILL) loses nothing:
the server reads what reached it and commits it. An acceptance costs the sending thread a
write(2), as SQLite's log line does, instead of a round trip.

Two rules keep what was promised:
- A connection has at most one acceptance the server has not answered: before writing the
  next, the thread reads the answer to its previous one (in the steady state it came long
  since, and reading it does not wait). A server whose client died processes what it had
  read until its first answer fails to go out; one unit is always within that. And a host
  cut off from the database stops at its connection's next acceptance, one behind at most.
- An acceptance counts (`recorded`: the journal leaves its row alone, the outcome is
  reported and counts towards its batch) only once the server answered it. One that failed,
  or a connection that broke, leaves its rows to the batch's own write, as before.
"""

from __future__ import annotations

import secrets
import select
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime

import psycopg
from psycopg import pq

from ..clock import stamp
from ..errors import StateError
from ..settings import PostgresState
from . import postgres

ANSWER_TIMEOUT = 30.0  # seconds without a word from the server: the connection is given up

_ACCEPT = (
    b"UPDATE deliveries SET status = 'sent', error = NULL, attempts = attempts + $1::integer, "
    b"updated_at = $2 WHERE id = $3::bigint AND status IN ('pending', 'uncertain')"
)
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_FINE = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
_FAILURES = (psycopg.Error, OSError)


class WriterBroken(Exception):
    """The writer's connection failed or went silent; its unanswered rows are not recorded."""


class AcceptanceWriter:
    """Records acceptances as they arrive, each sending thread on its own connection."""

    def __init__(self, target: PostgresState, run_id: int) -> None:
        self.target, self.run_id = target, run_id
        self.pipes: dict[int, _Pipe] = {}  # sending thread -> its connection
        self.lock = threading.Lock()

    def write(self, delivery_id: int, attempts: int) -> bool:
        """Called in a sending thread as a 250 arrives. Returns False: the server has not
        answered yet (`recorded` says when it has)."""
        me = threading.get_ident()
        pipe = self.pipes.get(me)
        if pipe is None:  # this thread's first acceptance: its connection
            pipe = _Pipe(self.target)
            with self.lock:
                self.pipes[me] = pipe
        pipe.write(delivery_id, attempts)
        return False

    def recorded(self, delivery_ids: Iterable[int]) -> set[int]:
        """Which of these the server recorded sent (waiting for the answers still due); they
        are forgotten here, so each is reported once."""
        wanted = set(delivery_ids)
        with self.lock:
            pipes = list(self.pipes.values())
        found: set[int] = set()
        for pipe in pipes:
            found |= pipe.recorded(wanted)
        return found

    def close(self) -> None:
        with self.lock:
            pipes = list(self.pipes.values())
            self.pipes.clear()
        for pipe in pipes:
            pipe.close()


class _Pipe:
    """One sending thread's connection, in pipeline mode (see the module)."""

    def __init__(self, target: PostgresState) -> None:
        self.lock = threading.Lock()
        self.unanswered: deque[int | None] = deque()  # written, in order (None: the PREPARE)
        self.written = 0  # units (PREPARE or UPDATE, each with its Sync) handed to the kernel
        self.answered = 0  # of those, answered by the server
        self.answered_ok: set[int] = set()  # delivery ids the server recorded sent
        self.failed = False  # the unit being read failed
        self.broken: str | None = None
        self.name = f"digest_accept_{secrets.token_hex(4)}".encode()
        self.db: postgres.PgConnection | None = None
        try:
            self.db = postgres.connect(target)
            self.pg = self.db.raw.pgconn
            self.db.execute("SET synchronous_commit = off")
            self.db.relaxed = True
            self.pg.enter_pipeline_mode()
            self.pg.send_prepare(self.name, _ACCEPT)
            self._hand_over(None)
        except (*_FAILURES, StateError, WriterBroken) as exc:
            self._break(exc)

    def write(self, delivery_id: int, attempts: int) -> None:
        with self.lock:
            if self.broken:
                return
            try:
                self._read_until(self.written)  # the previous one answered: one unanswered
                at = stamp(datetime.now(UTC)).encode()
                self.pg.send_query_prepared(self.name, [b"%d" % attempts, at, b"%d" % delivery_id])
                self._hand_over(delivery_id)
            except (*_FAILURES, WriterBroken) as exc:
                self._break(exc)

    def recorded(self, delivery_ids: set[int]) -> set[int]:
        with self.lock:
            if not self.broken:
                try:
                    self._read_until(self.written)
                except (*_FAILURES, WriterBroken) as exc:
                    self._break(exc)
            found = delivery_ids & self.answered_ok
            self.answered_ok -= found
        return found

    def close(self) -> None:
        with self.lock:
            if self.db is None:
                return
            if not self.broken:
                try:
                    self._read_until(self.written)
                    self.pg.exit_pipeline_mode()
                    self.db.execute(f"DEALLOCATE {self.name.decode()}")
                except Exception as exc:  # anything: the connection is not pooled then
                    self._break(exc)
            if self.broken:
                self.db.raw.close()  # not back to the pool in pipeline mode
            self.db.close()

    # -- the connection ---------------------------------------------------------------------
    def _hand_over(self, key: int | None) -> None:
        """End the unit with a Sync (its own commit) and flush it to the kernel."""
        self.pg.pipeline_sync()
        self.unanswered.append(key)
        self.written += 1
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while self.pg.flush() != 0:  # the socket's buffer was full: wait until it drains
            readable, _, _ = self._wait(True, deadline)
            if readable:
                self._take()  # the server may be waiting for us to read before it reads

    def _read_until(self, number: int) -> None:
        """Read answers until the `number`th unit is answered."""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        self._take()
        while self.answered < number:
            self._wait(False, deadline)
            self._take()

    def _wait(self, writing: bool, deadline: float) -> tuple[list[int], list[int], list[int]]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WriterBroken(f"no answer from the server for {ANSWER_TIMEOUT:.0f} s")
        fd = self.pg.socket
        return select.select([fd], [fd] if writing else [], [], left)

    def _take(self) -> None:
        """Read what the server sent so far and match its answers to the units written."""
        self.pg.consume_input()
        ended = False
        while not self.pg.is_busy():
            result = self.pg.get_result()
            if result is None:  # the end of one statement's results, or nothing more yet
                if ended:
                    break
                ended = True
                continue
            ended = False
            if result.status == _SYNC:
                key = self.unanswered.popleft()
                self.answered += 1
                if key is not None and not self.failed:
                    self.answered_ok.add(key)
                self.failed = False
            elif result.status not in _FINE:
                self.failed = True  # FATAL_ERROR, PIPELINE_ABORTED: this unit is not recorded

    def _break(self, exc: BaseException) -> None:
        """Stop writing: what the server did not answer is left to the batch's own write."""
        self.broken = " ".join(str(exc).split()) or type(exc).__name__
        self.unanswered.clear()
        self.answered = self.written
