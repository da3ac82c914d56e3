"""What the pages show: every subscriber's message at one moment, built the way a send builds
it (`digest.send.open_previews`), and the ad-hoc subscriber a page's query describes."""

from __future__ import annotations

import email
import email.policy
import sys
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from .. import send as sending
from ..compose.render import GMAIL_CLIP
from ..errors import DigestError, SourceError
from ..models import Subscriber, TaggedItem
from ..settings import Settings, load_settings
from ..subscribers.fields import (
    GROUPINGS,
    FieldError,
    check_item_languages,
    check_language,
    check_names,
    check_order,
)

SIZE_WARNING = 90 * 1024  # the HTML size from which a page warns that Gmail's clip is near
ADHOC_EMAIL = "preview@localhost"
ADHOC_PARAMS = ("regions", "topics", "group_by", "order", "name", "language", "item_languages")
ADHOC_KEPT = 64  # ad-hoc messages kept per snapshot


@dataclass(frozen=True)
class MessageView:
    """One message as it will be sent, read back from its bytes with the stdlib parser."""

    subject: str
    headers: list[tuple[str, str]]
    html: str
    text: str
    message_bytes: int
    shown: int  # items in the body
    total: int  # items selected (more than shown when max_items or the size cap cut the body)
    capped: int = 0  # max_items, when the digest hit it (0: it did not)
    left_out: tuple[str, ...] = ()  # titles of the stories not in the email, newest first
    on_the_web: bool = False  # those are listed on the web page the email links to

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))

    @property
    def size_level(self) -> str:
        if self.html_bytes >= GMAIL_CLIP:
            return "over"
        return "warn" if self.html_bytes >= SIZE_WARNING else "ok"

    @property
    def size_percent(self) -> int:
        return min(100, round(self.html_bytes * 100 / GMAIL_CLIP))


def message_view(composed: sending.ComposedMessage) -> MessageView:
    message = email.message_from_bytes(composed.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    parts = {kind: message.get_body((kind,)) for kind in ("html", "plain")}
    content = {  # the message's lines end in CRLF on the wire; show them as the template wrote
        kind: part.get_content().replace("\r\n", "\n") if part is not None else ""
        for kind, part in parts.items()
    }
    return MessageView(
        subject=str(message.get("Subject", "")),
        headers=[(name, str(value)) for name, value in message.items()],
        html=content["html"],
        text=content["plain"],
        message_bytes=len(composed.data),
        shown=composed.rendered.shown,
        total=len(composed.digest.items) + len(composed.digest.more),
        capped=len(composed.digest.items) if composed.digest.more else 0,
        left_out=_left_out(composed),
        on_the_web=bool(composed.more_ids),
    )


def _left_out(composed: sending.ComposedMessage) -> tuple[str, ...]:
    shown = set(composed.item_ids)
    digest = composed.digest
    return tuple(t.item.title for t in (*digest.items, *digest.more) if t.id not in shown)


@dataclass
class Snapshot:
    """The inputs and every subscriber's message at one moment, or the error that stopped them."""

    token: str
    built: datetime
    settings: Settings | None = None
    inputs: sending.Inputs | None = None
    results: list[sending.PreviewResult] = field(default_factory=list)
    items: list[TaggedItem] = field(default_factory=list)
    secret: bytes = b"preview"
    source_problems: list[SourceError] = field(default_factory=list)
    error: DigestError | None = None
    views: dict[str, MessageView] = field(default_factory=dict)
    adhoc: dict[Subscriber, sending.PreviewResult] = field(default_factory=dict)
    adhoc_lock: threading.Lock = field(default_factory=threading.Lock)

    def find(self, address: str) -> sending.PreviewResult | None:
        folded = address.casefold()
        return next((r for r in self.results if r.subscriber.email.casefold() == folded), None)

    def view(self, result: sending.PreviewResult) -> MessageView | None:
        """A subscriber's message as the pages show it, kept for the snapshot's life."""
        if result.message is None:
            return None
        key = result.subscriber.email.casefold()
        if key not in self.views:
            self.views[key] = message_view(result.message)
        return self.views[key]


def build_snapshot(config: Path, token: str, now: datetime) -> Snapshot:
    """Load everything and prepare every subscriber's message, reading the state only."""
    snapshot = Snapshot(token=token, built=now)
    try:
        settings = snapshot.settings = load_settings(config)
        inputs = snapshot.inputs = sending.load_inputs(settings)
        # Unreadable item files are shown on the index instead of silently missing.
        with sending.open_previews(settings, inputs, now=now) as previews:
            snapshot.secret = previews.secret
            snapshot.results = list(previews.results())
            snapshot.items, snapshot.source_problems = previews.items, previews.pickup.problems
    except DigestError as exc:
        snapshot.error = exc
    except Exception as exc:  # a bug or a broken state file: show it, keep serving
        traceback.print_exc(file=sys.stderr)
        snapshot.error = DigestError(
            f"unexpected error while building the preview: {type(exc).__name__}: {exc}",
            hint="the traceback is in the terminal running `digest preview --serve`",
        )
    return snapshot


def compose_adhoc(snapshot: Snapshot, subscriber: Subscriber) -> sending.PreviewResult:
    """What a subscriber nobody has sent anything to yet would get from the same items.
    Kept per snapshot: the page and its two frames ask for the same one at once."""
    assert snapshot.inputs is not None
    with snapshot.adhoc_lock:
        if subscriber not in snapshot.adhoc:
            result = sending.compose_preview(
                snapshot.inputs, snapshot.items, snapshot.secret, snapshot.built, subscriber
            )
            if len(snapshot.adhoc) >= ADHOC_KEPT:
                snapshot.adhoc.clear()
            snapshot.adhoc[subscriber] = result
        return snapshot.adhoc[subscriber]


class BadQuery(Exception):
    """An ad-hoc query the taxonomy does not know, with every problem in it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _names(
    values: list[str], kind: str, known: tuple[str, ...], problems: list[str]
) -> tuple[str, ...]:
    """`regions=Caribbean,Health` or repeated parameters, checked as the file's are."""
    written = [name.strip() for value in values for name in value.split(",") if name.strip()]
    chosen, refused = check_names(written, kind, known)
    problems.extend(refused)
    return chosen


def adhoc_subscriber(query: dict[str, list[str]], snapshot: Snapshot) -> Subscriber:
    """`?regions=Caribbean&topics=Health,Diaspora&group_by=topic` -> a Subscriber, or BadQuery
    naming every problem. Names match the taxonomy regardless of case; none means all."""
    assert snapshot.inputs is not None
    taxonomy = snapshot.inputs.taxonomy
    problems = [
        f"unknown parameter {key!r}; use {', '.join(ADHOC_PARAMS)}"
        for key in query
        if key not in ADHOC_PARAMS
    ]
    regions = _names(query.get("regions", []), "region", taxonomy.regions, problems)
    topics = _names(query.get("topics", []), "topic", taxonomy.topics, problems)
    group_by = (query.get("group_by") or ["region"])[-1].strip() or "region"
    if group_by not in GROUPINGS:
        problems.append(f"group_by must be {' or '.join(GROUPINGS)}, not {group_by!r}")
    try:
        order = check_order((query.get("order") or [""])[-1].strip())
    except FieldError as exc:
        problems.append(str(exc))
        order = "newest"
    name = " ".join((query.get("name") or [""])[-1].split())[:100]
    language, item_languages = _languages(query, problems)
    if problems:
        raise BadQuery(problems)
    return Subscriber(
        email=ADHOC_EMAIL,
        name=name,
        regions=regions,
        topics=topics,
        group_by=group_by,
        order=order,
        language=language,
        item_languages=item_languages,
    )


def _languages(query: dict[str, list[str]], problems: list[str]) -> tuple[str | None, tuple]:
    """`?language=es&item_languages=es,en`: a new reader's language and news languages."""
    try:
        language = check_language((query.get("language") or [""])[-1].strip())
    except FieldError as exc:
        problems.append(str(exc))
        language = None
    wanted = [c.strip() for v in query.get("item_languages", []) for c in v.split(",") if c.strip()]
    try:
        return language, check_item_languages(wanted)
    except FieldError as exc:
        problems.append(str(exc))
        return language, ()
