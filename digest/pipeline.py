"""One run: pick up -> tag -> select -> render -> deliver -> record.

The only module that knows every stage. Input is validated before anything is sent: bad
settings, subscribers or templates raise an InputError and nothing goes out.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from .delivery import MaildirSender, SMTPSender
from .dispatch import Dispatcher, Job, NextSlot, RateLimit, Result
from .errors import DigestError, SourceError
from .message import build_message, stable_message_id
from .models import Digest, RenderedEmail, Subscriber, TaggedItem
from .overrides import with_web_changes
from .render import (
    LIST_NAME,
    Personal,
    Rendered,
    Renderer,
    html_values_for,
    text_values_for,
)
from .selection import (
    ItemIndex,
    arrange,
    preference_key,
    unsent,
    window_start,
)
from .send_list import SendList
from .settings import Settings
from .signing import load_signer
from .sources import read_sources
from .state import Delivery, Finished, State, send_lock, utcnow
from .subscribers import load_subscribers, not_listed
from .taxonomy import Taxonomy, load_taxonomy, tag
from .tokens import link_with_token, make_token
from .workers import deliver_in_processes, worker_count


@dataclass
class PickupReport:
    new: int = 0
    total: int = 0
    files: int = 0
    problems: list[SourceError] = field(default_factory=list)


@dataclass
class Outcome:
    email: str
    status: str  # sent | failed | skipped | would-send | test
    items: int = 0
    size: int = 0
    message_id: str | None = None
    error: str | None = None
    attempts: int = 0


@dataclass
class SendReport:
    """Counts for every subscriber; the outcomes themselves for the first `KEPT_OUTCOMES` and
    for every failure, so a run of any size reports in bounded memory."""

    run_id: int | None
    pickup: PickupReport
    outcomes: list[Outcome] = field(default_factory=list)
    aborted: str | None = None
    warnings: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    failed: list[Outcome] = field(default_factory=list)
    total: int = 0
    # Over every message sent (or that would be): how many bytes and items, the most items.
    message_bytes: int = 0
    message_items: int = 0
    max_items: int = 0

    KEPT_OUTCOMES = 10_000

    def add(self, outcome: Outcome) -> None:
        self.total += 1
        self.counts[outcome.status] += 1
        if outcome.status in ("sent", "test", "would-send"):
            self.message_bytes += outcome.size
            self.message_items += outcome.items
            self.max_items = max(self.max_items, outcome.items)
        if outcome.status == "failed":
            self.failed.append(outcome)
        if len(self.outcomes) < self.KEPT_OUTCOMES:
            self.outcomes.append(outcome)

    def count(self, status: str) -> int:
        return self.counts[status]

    @property
    def ok(self) -> bool:
        return not self.failed and self.aborted is None


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, outcome: Outcome) -> None: ...


class _NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, outcome: Outcome) -> None:
        pass


@dataclass
class Inputs:
    """Everything a person wrote, loaded and validated once per run."""

    settings: Settings
    taxonomy: Taxonomy
    subscribers: list[Subscriber]
    renderer: Renderer


def load_inputs(
    settings: Settings, keep_sources: bool = True, with_subscribers: bool = True
) -> Inputs:
    """Taxonomy, effective subscribers and templates, validated. `keep_sources=False` (sending)
    keeps only the encoded parts of each rendering, not its MJML, HTML and text. A send reads
    its subscribers into a `SendList` instead (`with_subscribers=False`)."""
    taxonomy = load_taxonomy(settings.taxonomy)
    subscribers = []
    if with_subscribers:
        # The file with the changes subscribers made on the web laid over it (unsubscribes
        # win). Read-only: the preview loads its inputs here too and must never write the state.
        checked = load_subscribers(settings.subscribers, taxonomy)
        subscribers = list(with_web_changes(checked, settings.state, taxonomy))
    renderer = Renderer(
        settings.templates, list_name=list_name(settings), keep_sources=keep_sources
    )
    renderer.check()
    return Inputs(settings, taxonomy, subscribers, renderer)


def list_name(settings: Settings) -> str:
    return settings.sender_address.display_name or LIST_NAME


def pick_up(settings: Settings, state: State, taxonomy: Taxonomy, now: datetime) -> PickupReport:
    """Read every source and store its items; a bad source is reported, the rest still load."""
    known = {*taxonomy.regions, *taxonomy.topics}
    result = read_sources(settings.sources, known)
    new = state.add_items(result.items, now)
    return PickupReport(
        new=new, total=len(result.items), files=result.files, problems=result.problems
    )


def tagged_items(state: State, taxonomy: Taxonomy) -> list[TaggedItem]:
    return [
        _with_first_seen(tag(stored.item, taxonomy), stored.first_seen) for stored in state.items()
    ]


def _with_first_seen(tagged: TaggedItem, first_seen: datetime) -> TaggedItem:
    return TaggedItem(
        tagged.item, tagged.regions, tagged.topics, tagged.matches, first_seen, tagged.withheld
    )


def select_subscribers(subscribers: list[Subscriber], only: Iterable[str]) -> list[Subscriber]:
    wanted = {o.casefold() for o in only}
    if not wanted:
        return subscribers
    chosen = [s for s in subscribers if s.email.casefold() in wanted]
    missing = wanted - {s.email.casefold() for s in chosen}
    if missing:
        raise not_listed(missing)
    return chosen


@dataclass
class Prepared:
    """A digest ready to go: the message bytes, and what to record."""

    subscriber: Subscriber
    digest: Digest
    profile: Rendered  # the shared rendering, personal fields still placeholders
    personal: Personal
    message_id: str
    data: bytes

    @property
    def item_ids(self) -> tuple[str, ...]:
        return self.profile.shown_ids

    @functools.cached_property
    def rendered(self) -> RenderedEmail:
        """The personal rendering as strings (for previews; sending uses `data`)."""
        return self.profile.personalise(self.subscriber, self.personal)


class Composer:
    """Builds each subscriber's digest and message from the state (reads only)."""

    def __init__(
        self,
        inputs: Inputs,
        state: State | None,
        items: list[TaggedItem],
        secret: bytes,
        now: datetime,
    ) -> None:
        self.inputs, self.state, self.secret, self.now = inputs, state, secret, now
        self.items = items
        self.index = ItemIndex(items)
        settings = inputs.settings
        self.sender = settings.sender_address
        self.list_name = list_name(settings)
        self.list_id = settings.list_id_value
        self.default_zone = settings.schedule.timezone
        self.signer, warning = load_signer(settings.dkim)
        self.warnings = [warning] if warning else []
        # Deliveries a killed run left pending, resent as they were (usually none).
        self.pending: dict[str, Delivery] = state.pending_deliveries() if state else {}
        # Messages older than `lookback` before a subscriber's latest cannot hold an item that
        # is new again; twice that allows for a clock that was set back.
        self.horizon = 2 * settings.lookback
        self._last_key: tuple[object, ...] | None = None
        self._last_digest: Digest | None = None

    HISTORY_BATCH = 64  # subscribers whose history is read in one query

    def digests(
        self, subscribers: Iterable[Subscriber], resend_pending: bool = True
    ) -> Iterator[tuple[Subscriber, Digest | None]]:
        """Each subscriber with their digest (None: nothing new), their histories read from the
        state a batch at a time."""
        remaining = iter(subscribers)
        while batch := tuple(itertools.islice(remaining, self.HISTORY_BATCH)):
            histories = (
                self.state.sent_histories([s.email for s in batch], self.horizon)
                if self.state is not None
                else {}
            )
            for subscriber in batch:
                history = histories.get(subscriber.email, (set(), None))
                yield subscriber, self._digest(subscriber, history, resend_pending)

    def digest_for(self, subscriber: Subscriber, resend_pending: bool = True) -> Digest | None:
        return next(self.digests([subscriber], resend_pending))[1]

    def _digest(
        self,
        subscriber: Subscriber,
        history: tuple[set[str], datetime | None],
        resend_pending: bool,
    ) -> Digest | None:
        settings, taxonomy = self.inputs.settings, self.inputs.taxonomy
        zone = _zone(subscriber.timezone or self.default_zone)
        today = self.now.astimezone(zone).date()
        pending = self.pending.get(subscriber.email) if resend_pending else None
        if pending is not None:  # resend what a killed run left pending, exactly
            wanted = set(pending.item_ids)
            chosen = tuple(t for t in self.items if t.id in wanted)
        else:
            sent, last = history
            since = window_start(last, self.now, settings.lookback)
            chosen = unsent(self.index.candidates(subscriber), sent, since)
        # Subscribers are sent in preference order, so those with the same preferences and the
        # same new items come one after another and share one digest.
        key = (preference_key(subscriber), today, chosen)
        if key == self._last_key and self._last_digest is not None:
            return dataclasses.replace(self._last_digest, subscriber=subscriber)
        digest = arrange(subscriber, chosen, today, taxonomy.regions, taxonomy.topics, zone)
        self._last_key, self._last_digest = key, digest
        return digest

    def unsubscribe_url(self, subscriber: Subscriber) -> str:
        token = make_token(self.secret, "unsubscribe", subscriber.email)
        return link_with_token(self.inputs.settings.unsubscribe_url, token)

    def prepare(self, digest: Digest, test: bool = False) -> Prepared:
        subscriber = digest.subscriber
        unsubscribe = self.unsubscribe_url(subscriber)
        personal = Personal.of(subscriber, unsubscribe)
        profile = self.inputs.renderer.render_shared(digest)
        message_id = stable_message_id(subscriber.email, profile.shown_ids, self.sender.domain)
        message = build_message(
            subject=profile.subject,
            body=profile.body,
            text_values=text_values_for(personal),
            html_values=html_values_for(personal),
            to_name=subscriber.name,
            to_email=subscriber.email,
            sender=self.sender,
            message_id=message_id,
            unsubscribe_url=unsubscribe,
            list_id=self.list_id,
            list_name=self.list_name,
            now=self.now,
            test=test,
        )
        if self.signer is not None:
            message = self.signer.sign(message)
        return Prepared(subscriber, digest, profile, personal, message_id, message)


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # ZoneInfo keeps one instance per name


WRITE_BATCH = 32  # deliveries per state transaction


def make_dispatcher(
    settings: Settings, connections: int | None = None, rate_slot: NextSlot | None = None
) -> Dispatcher:
    """The senders of a run. `rate_slot` shares the rate limits with other processes."""
    delivery, smtp = settings.delivery, settings.delivery.smtp
    envelope_from = settings.sender_address.addr_spec
    if delivery.method != "smtp":
        return Dispatcher(lambda: MaildirSender(delivery.maildir), envelope_from)
    return Dispatcher(
        lambda: SMTPSender(smtp),
        envelope_from,
        connections=connections or smtp.connections,
        retries=smtp.retries,
        backoff=smtp.retry_backoff,
        rate=RateLimit(smtp.max_per_second, smtp.max_per_minute, shared=rate_slot),
    )


def deliver(
    settings: Settings,
    composer: Composer,
    state: State,
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
) -> str | None:
    """Compose and hand over each subscriber's digest, recording as it goes. Returns why the
    run stopped early, or None.

    Deliveries are recorded as pending `WRITE_BATCH` at a time, before any of them is handed
    over (a pending row that never left is simply sent next run). Results are recorded in the
    same transaction as the next batch, or sooner: once `WRITE_BATCH` have come back, and
    after 50 ms of waiting for a connection. So an accepted message is recorded within the
    time it takes to compose one batch, and a crash resends at most about a batch (with the
    same Message-ID, see the README)."""
    recording = run_id is not None
    in_flight: dict[int, Outcome] = {}
    planned: list[tuple[Subscriber, Prepared, Outcome]] = []
    returned: list[tuple[Finished, Outcome]] = []  # results not recorded yet
    aborted: str | None = None
    numbers = itertools.count(1)

    def record() -> None:
        """Write the results that came back (with nothing else to write), then report them."""
        if recording and returned:
            state.finish_deliveries([f for f, _ in returned], clock())
        report_recorded()

    def report_recorded() -> None:
        for _, outcome in returned:
            emit(outcome)
        returned.clear()

    def returned_result(result: Result) -> None:
        nonlocal aborted
        outcome = in_flight.pop(result.job.key)
        outcome.attempts = result.attempts
        if result.ok:
            outcome.status = "test" if to else "sent"
        else:
            outcome.status = "failed"
            outcome.error = result.error.message if result.error else "unknown error"
            if result.fatal and aborted is None:
                aborted = str(result.error)
        returned.append((Finished(result.job.key, outcome.error, result.attempts), outcome))
        if len(returned) >= WRITE_BATCH:
            record()

    def hand_over(dispatcher: Dispatcher) -> None:
        nonlocal aborted
        if recording:
            assert run_id is not None
            keys = state.begin_deliveries(
                run_id,
                [(s.email, p.message_id, p.item_ids) for s, p, _ in planned],
                clock(),
                composer.pending,
                finished=[f for f, _ in returned],
            )
            report_recorded()
        else:
            keys = [(next(numbers), True) for _ in planned]
        for number, ((key, _), (subscriber, prepared, outcome)) in enumerate(
            zip(keys, planned, strict=True)
        ):
            if should_stop() or dispatcher.aborted.is_set():
                # Stopped between messages: what never left is forgotten, not left pending.
                if recording:
                    state.forget_deliveries([k for k, new in keys[number:] if new])
                if aborted is None and should_stop():
                    aborted = "stopped before every subscriber was done"
                break
            in_flight[key] = outcome
            job = Job(key, to or subscriber.email, prepared.data)
            for result in dispatcher.submit(job, waiting=record):
                returned_result(result)
        planned.clear()

    dispatcher = None if dry_run else make_dispatcher(settings, connections, rate_slot)
    completed = False
    try:
        for subscriber, digest in composer.digests(subscribers, resend_pending=recording):
            if should_stop():
                aborted = aborted or "stopped before every subscriber was done"
                break
            if dispatcher is not None and dispatcher.aborted.is_set():
                break
            if digest is None:
                emit(Outcome(subscriber.email, "skipped"))
                continue
            prepared = composer.prepare(digest, test=to is not None)
            outcome = Outcome(
                subscriber.email,
                "would-send",
                items=len(prepared.item_ids),
                size=len(prepared.data),
                message_id=prepared.message_id,
            )
            if dispatcher is None:
                emit(outcome)
                continue
            planned.append((subscriber, prepared, outcome))
            if len(planned) >= WRITE_BATCH:
                hand_over(dispatcher)
        else:
            completed = True
    finally:
        if dispatcher is not None:
            try:
                if completed and planned:
                    hand_over(dispatcher)
                for result in dispatcher.finish(waiting=record):
                    returned_result(result)
            finally:
                record()
    return aborted


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
    progress = progress or _NoProgress()
    inputs = load_inputs(settings, keep_sources=False, with_subscribers=False)
    now = now or clock()
    recording = not dry_run and to is None
    with (
        SendList.build(settings.subscribers, inputs.taxonomy, settings.state, only) as send_list,
        send_lock(settings.state, wait=lock_wait),
        State(settings.state) as state,
    ):
        total = len(send_list)
        pickup = pick_up(settings, state, inputs.taxonomy, now)
        secret, _ = state.token_secret(settings.token_secret_env)
        run_id = state.start_run(kind, now, due_at) if recording else None
        report = SendReport(run_id=run_id, pickup=pickup)
        workers = worker_count(settings, dry_run, total)

        def emit(outcome: Outcome) -> None:
            report.add(outcome)
            progress.advance(outcome)

        try:
            if workers == 1:
                composer = Composer(
                    inputs, state, tagged_items(state, inputs.taxonomy), secret, now
                )
                report.warnings.extend(composer.warnings)
                progress.start(total)
                report.aborted = deliver(
                    settings,
                    composer,
                    state,
                    send_list.read(),
                    run_id=run_id,
                    dry_run=dry_run,
                    to=to,
                    emit=emit,
                    should_stop=should_stop,
                    clock=clock,
                )
            else:
                progress.start(total)
                report.aborted = deliver_in_processes(
                    settings,
                    workers,
                    send_list.path,
                    run_id=run_id,
                    to=to,
                    now=now,
                    emit=emit,
                    should_stop=should_stop,
                    warnings=report.warnings,
                )
        except BaseException as exc:  # Ctrl-C or a bug: the run must not be recorded as done
            report.aborted = report.aborted or f"interrupted: {type(exc).__name__}"
            raise
        finally:
            if run_id is not None:
                status = "aborted" if report.aborted else ("failed" if report.failed else "ok")
                state.finish_run(
                    run_id,
                    clock(),
                    status,
                    report.count("sent"),
                    report.count("failed"),
                    report.count("skipped"),
                    note=report.aborted,
                )
    return report


@dataclass
class PreviewResult:
    subscriber: Subscriber
    prepared: Prepared | None
    files: list[Path] = field(default_factory=list)


def preview_items(
    settings: Settings, inputs: Inputs, now: datetime
) -> tuple[list[TaggedItem], PickupReport, State | None]:
    """Items as a send would see them, without writing anything: the state is opened read-only
    and items not picked up yet count as first seen now."""
    state = State.open_readonly(settings.state)
    stored = {s.item.id: s for s in state.items()} if state else {}
    result = read_sources(settings.sources, {*inputs.taxonomy.regions, *inputs.taxonomy.topics})
    items = [_with_first_seen(tag(s.item, inputs.taxonomy), s.first_seen) for s in stored.values()]
    for item in result.items:
        if item.id not in stored:
            items.append(_with_first_seen(tag(item, inputs.taxonomy), now))
    report = PickupReport(
        new=sum(1 for i in result.items if i.id not in stored),
        total=len(result.items),
        files=result.files,
        problems=result.problems,
    )
    return items, report, state


def iter_previews(
    settings: Settings, inputs: Inputs, only: Iterable[str] = (), now: datetime | None = None
) -> Iterator[PreviewResult]:
    now = now or utcnow()
    items, _, state = preview_items(settings, inputs, now)
    secret = (state.peek_token_secret(settings.token_secret_env) if state else None) or b"preview"
    composer = Composer(inputs, state, items, secret, now)
    try:
        for subscriber in select_subscribers(inputs.subscribers, only):
            digest = composer.digest_for(subscriber)
            yield PreviewResult(subscriber, composer.prepare(digest) if digest else None)
    finally:
        if state is not None:
            state.close()


def write_preview(
    settings: Settings, out: Path, only: Iterable[str] = (), now: datetime | None = None
) -> list[PreviewResult]:
    """`<address>.mjml`, `.html`, `.txt` and `.eml` per subscriber in `out`; sends nothing."""
    inputs = load_inputs(settings)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for result in iter_previews(settings, inputs, only, now):
        if result.prepared is not None:
            rendered = result.prepared.rendered
            base = out / result.subscriber.email
            for suffix, content in (
                (".mjml", rendered.mjml),
                (".html", rendered.html),
                (".txt", rendered.text),
            ):
                path = base.with_name(base.name + suffix)
                path.write_text(content, encoding="utf-8")
                result.files.append(path)
            eml = base.with_name(base.name + ".eml")
            eml.write_bytes(result.prepared.data)
            result.files.append(eml)
        results.append(result)
    return results


__all__ = ["DigestError", "send", "write_preview", "pick_up", "load_inputs"]
