"""One process's share of a run: compose each subscriber's digest, record it as pending, hand it
to the senders, record what came back. `run.send` calls it once, or each worker process once
(`processes`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..bounces import VerpSigner
from ..delivery import Dispatcher, Job, MaildirSender, NextSlot, RateLimit, Result, SMTPSender
from ..models import Subscriber
from ..settings import Settings
from ..state import Finished, State
from ..taxonomy import Taxonomy
from .composer import ComposedMessage, Composer
from .inputs import Inputs
from .journal import WRITE_BATCH, Journal, NoJournal
from .pickup import tagged_items
from .report import STOPPED, Abort, Outcome
from .withdrawals import Withdrawals

WITHDRAWN = "unsubscribed during the run: not sent"


def make_dispatcher(
    settings: Settings,
    connections: int | None = None,
    rate_slot: NextSlot | None = None,
    **hooks: Any,
) -> Dispatcher:
    """The senders of a run. `rate_slot` shares the rate limits with other processes; `hooks`
    are the Dispatcher's `on_accepted` and `withdrawn`."""
    delivery, smtp = settings.delivery, settings.delivery.smtp
    # With VERP on, each job carries its own `bounces+TOKEN@domain`; the bare return path is
    # for what has no delivery of its own (a test send).
    envelope_from = settings.bounces.return_path or settings.sender_address.addr_spec
    if delivery.method != "smtp":
        return Dispatcher(lambda: MaildirSender(delivery.maildir), envelope_from, **hooks)
    return Dispatcher(
        lambda: SMTPSender(smtp),
        envelope_from,
        connections=connections or smtp.connections,
        retries=smtp.retries,
        backoff=smtp.retry_backoff,
        rate=RateLimit(smtp.max_per_second, smtp.max_per_minute, shared=rate_slot),
        **hooks,
    )


@dataclass
class _Handover:
    """Hands composed messages to the dispatcher a batch at a time, recording as it goes."""

    dispatcher: Dispatcher
    journal: Journal | NoJournal
    to: str | None
    should_stop: Callable[[], bool]
    withdrawals: Withdrawals | None = None
    verp: VerpSigner | None = None  # each recorded delivery's own envelope sender
    planned: list[tuple[Subscriber, ComposedMessage, Outcome]] = field(default_factory=list)
    in_flight: dict[int, Outcome] = field(default_factory=dict)
    aborted: Abort | None = None

    def add(self, subscriber: Subscriber, message: ComposedMessage, outcome: Outcome) -> None:
        self.planned.append((subscriber, message, outcome))
        if len(self.planned) >= WRITE_BATCH:
            self.hand_over()

    def hand_over(self) -> None:
        keys = self.journal.plan(
            [
                (s.email, m.message_id, m.item_ids, m.profile, m.more_json)
                for s, m, _ in self.planned
            ]
        )
        for number, ((key, _), (subscriber, message, outcome)) in enumerate(
            zip(keys, self.planned, strict=True)
        ):
            if self.should_stop() or self.dispatcher.aborted.is_set():
                # Stopped between messages: what never left is forgotten, not left pending.
                self.journal.forget(keys[number:])
                if self.aborted is None and self.should_stop():
                    self.aborted = STOPPED
                break
            if self.withdrawals is not None:
                self.withdrawals.refresh()  # at most once a second
            self.in_flight[key] = outcome
            sender = self.verp.address(subscriber.email, key) if self.verp else None
            job = Job(key, self.to or subscriber.email, message.data, sender)
            for result in self.dispatcher.submit(job, waiting=self.waiting):
                self.returned(result)
        self.planned.clear()

    def waiting(self) -> None:
        """While waiting for a connection: record what came back, look for unsubscribes."""
        if self.withdrawals is not None:
            self.withdrawals.refresh()
        self.journal.flush()

    def returned(self, result: Result) -> None:
        outcome = self.in_flight.pop(result.job.key)
        outcome.attempts = result.attempts
        if result.withdrawn:
            outcome.status, outcome.error = "skipped", WITHDRAWN
            self.journal.result(Finished(result.job.key, WITHDRAWN, 0), outcome)
            return
        if result.ok:
            outcome.status = "test" if self.to else "sent"
        else:
            outcome.status = "uncertain" if result.uncertain else "failed"
            outcome.error = result.error.message if result.error else "unknown error"
            if result.fatal and result.error is not None and self.aborted is None:
                self.aborted = Abort(str(result.error), result.error.exit_code)
        finished = Finished(result.job.key, outcome.error, result.attempts, result.uncertain)
        self.journal.result(finished, outcome)

    def finish(self, completed: bool) -> None:
        try:
            if completed and self.planned:
                self.hand_over()
            for result in self.dispatcher.finish(waiting=self.waiting):
                self.returned(result)
        finally:
            try:
                self.journal.flush()
            finally:
                self.journal.close()


def _handover(
    settings: Settings,
    journal: Journal | NoJournal,
    composer: Composer,
    to: str | None,
    should_stop: Callable[[], bool],
    connections: int | None,
    rate_slot: NextSlot | None,
) -> _Handover:
    """The senders, told to write each acceptance down and, in a recorded run, to withdraw
    the messages of readers who unsubscribed since the run began."""
    withdrawals = None
    if isinstance(journal, Journal):
        withdrawals = Withdrawals(journal.state, since=composer.now)
    dispatcher = make_dispatcher(
        settings,
        connections,
        rate_slot,
        on_accepted=journal.accepted,
        withdrawn=(lambda job: withdrawals.withdrawn(job.recipient)) if withdrawals else None,
    )
    return_path = settings.bounces.return_path
    verp = (
        VerpSigner(return_path, composer.secret)
        if return_path and isinstance(journal, Journal) and to is None
        else None
    )
    return _Handover(dispatcher, journal, to, should_stop, withdrawals, verp)


def deliver(
    settings: Settings,
    composer: Composer,
    state: State | None,
    subscribers: Iterable[Subscriber],
    *,
    run_id: int | None,
    dry_run: bool,
    to: str | None,
    emit: Callable[[Outcome], None],
    should_stop: Callable[[], bool],
    clock: Callable[[], datetime],
    connections: int | None = None,
    rate_slot: NextSlot | None = None,
) -> Abort | None:
    """Compose and hand over each subscriber's digest, recording as it goes (see `journal`).
    Returns why the run stopped early, or None. A dry run composes and reports only."""
    handover = None
    if not dry_run:
        journal: Journal | NoJournal = (
            Journal(state, run_id, composer.pending, clock, emit)
            if run_id is not None and state is not None
            else NoJournal(emit)
        )
        handover = _handover(settings, journal, composer, to, should_stop, connections, rate_slot)
    aborted: Abort | None = None
    completed = False
    try:
        for subscriber, digest in composer.digests(subscribers, resend_pending=run_id is not None):
            if should_stop():
                aborted = STOPPED
                break
            if handover is not None and handover.dispatcher.aborted.is_set():
                break
            if digest is None:
                emit(Outcome(subscriber.email, "skipped"))
                continue
            message = composer.compose(digest, test=to is not None)
            outcome = Outcome(
                subscriber.email,
                "would-send",
                items=len(message.item_ids),
                size=len(message.data),
                message_id=message.message_id,
            )
            if handover is None:
                emit(outcome)
            else:
                handover.add(subscriber, message, outcome)
        else:
            completed = True
    finally:
        if handover is not None:
            handover.finish(completed)
    return (handover.aborted if handover is not None else None) or aborted


def deliver_share(
    inputs: Inputs,
    state: State,
    secret: bytes,
    subscribers: Iterable[Subscriber],
    *,
    now: datetime,
    warn: Callable[[str], None],
    full_taxonomy: Callable[[], Taxonomy] | None = None,
    **options: Any,
) -> Abort | None:
    """`deliver` with a composer over the items the state holds: what a single-process run
    does, and what each worker process does with its share. `options` are `deliver`'s; see
    `pickup.tagged_items` for `full_taxonomy`."""
    items = tagged_items(state, inputs.taxonomy, inputs.settings, full_taxonomy)
    composer = Composer(inputs, state, items, secret, now, run_id=options.get("run_id"))
    for warning in composer.warnings:
        warn(warning)
    return deliver(inputs.settings, composer, state, subscribers, **options)
