"""`digest bounces` and the scheduler's poll: read the new mail of the bounce mailbox (or of
the files, Maildirs and mbox files given), classify each, record it and act on it, and move
what was recorded from new/ to cur/ (never deleting anything).

Mails are classified outside any transaction and recorded `BATCH` at a time; a mail is moved
only once its batch is committed, so a run killed at any moment reads it again next time and
its fingerprint makes it count once. A mailbox that cannot be read is reported and the other
sources are still read; one unreadable mail is `other`, with the reason, and never stops the
others. A dry run reads the state and changes and moves nothing.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..clock import utcnow
from ..errors import DigestError
from ..settings import Settings
from ..state import State, reading
from .classify import classify
from .mailbox import MailboxError, MailSource, fingerprint, open_source
from .recording import BounceRecorder, Incoming, Policy, Processed

BATCH = 100  # mails per state transaction


@dataclass
class IntakeReport:
    """What one pass over the mailboxes did."""

    mails: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    problems: list[DigestError] = field(default_factory=list)
    note: str = ""  # e.g. that the default mailbox does not exist yet

    def add(self, result: Processed) -> None:
        self.mails += 1
        self.kinds[result.classified.kind] += 1
        if result.duplicate:
            self.duplicates += 1
        else:
            self.actions[result.action] += 1


def recorder_for(
    settings: Settings, state: State | None, dry_run: bool, clock: Callable[[], datetime]
) -> BounceRecorder:
    """The recorder with the settings' policy and return path and the state's token secret
    (made once if missing, as a send does; a dry run only looks)."""
    if state is None:
        secret = None
    elif dry_run or state.readonly:
        secret = state.peek_token_secret(settings.token_secret_env)
    else:
        secret, _ = state.token_secret(settings.token_secret_env)
    bounces = settings.bounces
    return BounceRecorder(
        state,
        bounces.return_path,
        secret,
        Policy(bounces.soft_limit, bounces.soft_window),
        clock,
        dry_run=dry_run,
    )


@contextlib.contextmanager
def _state(settings: Settings, dry_run: bool) -> Iterator[State | None]:
    if dry_run:
        with reading(settings.state) as state:
            yield state
    else:
        with State(settings.state) as state:
            yield state


def read_bounces(
    settings: Settings,
    paths: Sequence[str | Path] = (),
    *,
    dry_run: bool = False,
    emit: Callable[[Processed], None] = lambda _: None,
    clock: Callable[[], datetime] = utcnow,
) -> IntakeReport:
    """Process the new mail of `paths`, or of `bounces.mailbox` when none are given; `emit`
    is told each mail's outcome once it is recorded."""
    report = IntakeReport()
    wanted = [str(p) for p in paths]
    if not wanted:
        mailbox = settings.bounces.mailbox
        if not mailbox.startswith("imaps://") and not Path(mailbox).exists():
            report.note = f"no bounce mailbox at {mailbox} yet: nothing to read"
            return report
        wanted = [mailbox]
    with _state(settings, dry_run) as state:
        recorder = recorder_for(settings, state, dry_run, clock)
        for where in wanted:
            try:
                source = open_source(where, dry_run, settings.bounces.password_env)
            except MailboxError as exc:
                report.problems.append(exc)
                continue
            try:
                _drain(source, recorder, report, emit)
            except (MailboxError, OSError) as exc:
                report.problems.append(
                    exc if isinstance(exc, MailboxError) else MailboxError(f"{where}: {exc}")
                )
            finally:
                report.problems += getattr(source, "problems", [])
                close = getattr(source, "close", None)
                if close is not None:
                    close()
    return report


def _drain(
    source: MailSource,
    recorder: BounceRecorder,
    report: IntakeReport,
    emit: Callable[[Processed], None],
) -> None:
    batch: list[Incoming] = []
    mails = iter(source)
    while True:
        try:
            identifier, data = next(mails)
        except StopIteration:
            break
        except (MailboxError, OSError):
            if batch:  # what was read before the mailbox failed is still recorded
                _record(source, recorder, batch, report, emit)
            raise
        batch.append(Incoming(identifier, fingerprint(data), classify(data)))
        if len(batch) >= BATCH:
            _record(source, recorder, batch, report, emit)
            batch = []
    if batch:
        _record(source, recorder, batch, report, emit)


def _record(
    source: MailSource,
    recorder: BounceRecorder,
    batch: list[Incoming],
    report: IntakeReport,
    emit: Callable[[Processed], None],
) -> None:
    """Record a batch, then move its mails to cur/ and report them."""
    results = recorder.record(batch)
    for mail, result in zip(batch, results, strict=True):
        source.mark_done(mail.file)
        report.add(result)
        emit(result)
