"""One run: pick up -> tag -> select -> render -> deliver -> record.

The only module that knows every stage. Input is validated before anything is sent: bad
settings, subscribers or templates raise an InputError and nothing goes out.
"""

from __future__ import annotations

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
from .dispatch import Dispatcher, Job, RateLimit, Result
from .errors import DigestError, SourceError
from .message import build_message, stable_message_id
from .models import Digest, RenderedEmail, Subscriber, TaggedItem
from .overrides import effective_subscribers
from .render import (
    LIST_NAME,
    Personal,
    Rendered,
    Renderer,
    html_values_for,
    text_values_for,
)
from .selection import ItemIndex, build_digest, in_send_order, window_start
from .settings import Settings
from .signing import load_signer
from .sources import read_sources
from .state import Delivery, Finished, State, send_lock, utcnow
from .subscribers import load_subscribers
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

    KEPT_OUTCOMES = 10_000

    def add(self, outcome: Outcome) -> None:
        self.total += 1
        self.counts[outcome.status] += 1
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


def load_inputs(settings: Settings, keep_sources: bool = True) -> Inputs:
    """Taxonomy, effective subscribers and templates, validated. `keep_sources=False` (sending)
    keeps only the encoded parts of each rendering, not its MJML, HTML and text."""
    taxonomy = load_taxonomy(settings.taxonomy)
    # The file with the changes subscribers made on the web laid over it (unsubscribes win).
    # Read-only: the preview loads its inputs here too and must never write the state.
    state = State.open_readonly(settings.state)
    try:
        subscribers = effective_subscribers(
            load_subscribers(settings.subscribers, taxonomy), state, taxonomy
        )
    finally:
        if state is not None:
            state.close()
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
    return TaggedItem(tagged.item, tagged.regions, tagged.topics, tagged.matches, first_seen)


def select_subscribers(subscribers: list[Subscriber], only: Iterable[str]) -> list[Subscriber]:
    wanted = {o.casefold() for o in only}
    if not wanted:
        return subscribers
    chosen = [s for s in subscribers if s.email.casefold() in wanted]
    missing = wanted - {s.email.casefold() for s in chosen}
    if missing:
        from .errors import SubscribersError

        raise SubscribersError(
            f"--only {', '.join(sorted(missing))}: not in the subscribers file",
            hint="check the address against subscribers.yaml",
        )
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

    def digest_for(self, subscriber: Subscriber, resend_pending: bool = True) -> Digest | None:
        settings, taxonomy = self.inputs.settings, self.inputs.taxonomy
        zone = _zone(subscriber.timezone or self.default_zone)
        sent: set[str] = set()
        last = None
        only_ids = None
        if self.state is not None:
            pending = self.pending.get(subscriber.email) if resend_pending else None
            if pending is not None:
                only_ids = pending.item_ids
            sent, last = self.state.sent_history(subscriber.email)
        return build_digest(
            subscriber,
            self.items if only_ids is not None else self.index.candidates(subscriber),
            already_sent=sent,
            since=window_start(last, self.now, settings.lookback),
            today=self.now.astimezone(zone).date(),
            all_regions=taxonomy.regions,
            all_topics=taxonomy.topics,
            only_ids=only_ids,
            zone=zone,
        )

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


def make_dispatcher(settings: Settings, connections: int | None = None) -> Dispatcher:
    delivery, smtp = settings.delivery, settings.delivery.smtp
    if delivery.method == "smtp":
        return Dispatcher(
            lambda: SMTPSender(smtp),
            settings.sender_address.addr_spec,
            connections=connections or smtp.connections,
            retries=smtp.retries,
            backoff=smtp.retry_backoff,
            rate=RateLimit(smtp.max_per_second, smtp.max_per_minute),
        )
    return Dispatcher(lambda: MaildirSender(delivery.maildir), settings.sender_address.addr_spec)


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
) -> str | None:
    """Compose and hand over each subscriber's digest, recording as it goes. Returns why the
    run stopped early, or None.

    Deliveries are recorded as pending in batches of `WRITE_BATCH`, before any of the batch is
    handed over (a pending row that never left is simply sent next run). Each result is
    recorded as soon as the main thread sees it (within 50 ms, even while it waits for a free
    connection), so the window in which an accepted message is not yet recorded stays small."""
    recording = run_id is not None
    in_flight: dict[int, tuple[Outcome, str, tuple[str, ...]]] = {}
    planned: list[tuple[Subscriber, Prepared, Outcome]] = []
    aborted: str | None = None
    numbers = itertools.count(1)

    def record(result: Result) -> None:
        nonlocal aborted
        outcome, email, item_ids = in_flight.pop(result.job.key)
        outcome.attempts = result.attempts
        error = None
        if result.ok:
            outcome.status = "test" if to else "sent"
        else:
            error = result.error.message if result.error else "unknown error"
            outcome.status, outcome.error = "failed", error
            if result.fatal and aborted is None:
                aborted = str(result.error)
        if recording:
            finished = Finished(result.job.key, email, item_ids, error, result.attempts)
            state.finish_deliveries([finished], clock())
        emit(outcome)

    def hand_over(dispatcher: Dispatcher) -> None:
        nonlocal aborted
        if recording:
            assert run_id is not None
            keys = state.begin_deliveries(
                run_id,
                [(s.email, p.message_id, p.item_ids) for s, p, _ in planned],
                clock(),
                composer.pending,
            )
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
            in_flight[key] = (outcome, subscriber.email, prepared.item_ids)
            for result in dispatcher.submit(Job(key, to or subscriber.email, prepared.data)):
                record(result)
        planned.clear()

    dispatcher = None if dry_run else make_dispatcher(settings, connections)
    completed = False
    try:
        for subscriber in subscribers:
            if should_stop():
                aborted = aborted or "stopped before every subscriber was done"
                break
            if dispatcher is not None and dispatcher.aborted.is_set():
                break
            digest = composer.digest_for(subscriber, resend_pending=recording)
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
            if completed and planned:
                hand_over(dispatcher)
            for result in dispatcher.finish():
                record(result)
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
    inputs = load_inputs(settings, keep_sources=False)
    only = tuple(only)
    subscribers = in_send_order(select_subscribers(inputs.subscribers, only))
    now = now or clock()
    recording = not dry_run and to is None
    with send_lock(settings.state, wait=lock_wait), State(settings.state) as state:
        pickup = pick_up(settings, state, inputs.taxonomy, now)
        secret, _ = state.token_secret(settings.token_secret_env)
        run_id = state.start_run(kind, now, due_at) if recording else None
        report = SendReport(run_id=run_id, pickup=pickup)
        workers = worker_count(settings, dry_run, len(subscribers))

        def emit(outcome: Outcome) -> None:
            report.add(outcome)
            progress.advance(outcome)

        try:
            if workers == 1:
                composer = Composer(
                    inputs, state, tagged_items(state, inputs.taxonomy), secret, now
                )
                report.warnings.extend(composer.warnings)
                progress.start(len(subscribers))
                report.aborted = deliver(
                    settings,
                    composer,
                    state,
                    subscribers,
                    run_id=run_id,
                    dry_run=dry_run,
                    to=to,
                    emit=emit,
                    should_stop=should_stop,
                    clock=clock,
                )
            else:
                progress.start(len(subscribers))
                # The workers read the subscribers themselves: none is kept here meanwhile.
                del subscribers[:]
                inputs.subscribers.clear()
                report.aborted = deliver_in_processes(
                    settings,
                    workers,
                    only,
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
