"""Every subscriber's message built as a send would build it, sending and recording nothing:
for `digest preview` (files) and the preview server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..clock import utcnow
from ..models import Subscriber, TaggedItem
from ..settings import Settings
from ..state import reading
from .composer import ComposedMessage, Composer
from .inputs import Inputs, load_inputs, select_subscribers
from .pickup import preview_items
from .report import PickupReport

NO_SECRET = b"preview"  # signs the preview's links before any run made the real secret


@dataclass
class PreviewResult:
    subscriber: Subscriber
    message: ComposedMessage | None  # None: nothing new, no email
    files: list[Path] = field(default_factory=list)


@dataclass
class Previews:
    """What previews are built from: the items a send would see, with the state's histories."""

    items: list[TaggedItem]
    pickup: PickupReport
    secret: bytes
    composer: Composer
    subscribers: list[Subscriber]

    def results(self) -> Iterator[PreviewResult]:
        """Each subscriber's message, composed as it is read."""
        for subscriber in self.subscribers:
            digest = self.composer.digest_for(subscriber)
            yield PreviewResult(subscriber, self.composer.compose(digest) if digest else None)


@contextlib.contextmanager
def open_previews(
    settings: Settings, inputs: Inputs, only: Iterable[str] = (), now: datetime | None = None
) -> Iterator[Previews]:
    """The previews of these inputs, with the state opened read-only for the block."""
    now = now or utcnow()
    subscribers = select_subscribers(inputs.subscribers, only)
    with reading(settings.state) as state:
        items, pickup = preview_items(settings, inputs.taxonomy, state, now)
        peeked = state.peek_token_secret(settings.token_secret_env) if state else None
        secret = peeked or NO_SECRET
        composer = Composer(inputs, state, items, secret, now)
        yield Previews(items, pickup, secret, composer, subscribers)


def compose_preview(
    inputs: Inputs, items: list[TaggedItem], secret: bytes, now: datetime, subscriber: Subscriber
) -> PreviewResult:
    """What a subscriber nobody has sent anything to yet would get from these items."""
    composer = Composer(inputs, None, items, secret, now)
    digest = composer.digest_for(subscriber)
    return PreviewResult(subscriber, composer.compose(digest) if digest else None)


def write_preview(
    settings: Settings, out: Path, only: Iterable[str] = (), now: datetime | None = None
) -> list[PreviewResult]:
    """`<address>.mjml`, `.html`, `.txt` and `.eml` per subscriber in `out`; sends nothing."""
    inputs = load_inputs(settings)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with open_previews(settings, inputs, only, now) as previews:
        for result in previews.results():
            if result.message is not None:
                _write_files(out, result)
            results.append(result)
    return results


def _write_files(out: Path, result: PreviewResult) -> None:
    assert result.message is not None
    rendered = result.message.rendered
    base = out / result.subscriber.email
    for suffix, content in (
        (".mjml", rendered.mjml),
        (".html", rendered.html),
        (".txt", rendered.text),
        (".eml", result.message.data),
    ):
        path = base.with_name(base.name + suffix)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        result.files.append(path)
