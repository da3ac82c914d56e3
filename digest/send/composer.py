"""Each subscriber's digest and message, built from the state (which it only reads).

Subscribers come in preference order (see `SendList`), so those with the same preferences and
the same new items come one after another and share one digest and one rendering.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ..compose import build_message, load_signer, stable_message_id
from ..compose.render import (
    Personal,
    PersonalRendering,
    SharedRendering,
    html_values_for,
    text_values_for,
)
from ..models import Digest, Subscriber, TaggedItem
from ..selection import ItemIndex, arrange, unsent, window_start
from ..state import Delivery, State
from .inputs import Inputs
from .links import PersonalLinks, digest_profile, feedback_id, listed_on_the_web


@dataclass
class ComposedMessage:
    """One subscriber's digest ready to go: the message bytes, and what to record."""

    subscriber: Subscriber
    digest: Digest
    shared: SharedRendering  # the rendering shared by alike digests, personal fields to fill
    personal: Personal
    message_id: str
    data: bytes
    profile: str | None = None  # JSON: what the digest was made for, for its web view
    more_ids: tuple[str, ...] = ()  # stories listed on the web page past `max_items`

    @property
    def item_ids(self) -> tuple[str, ...]:
        return self.shared.shown_ids

    @property
    def more_json(self) -> str | None:
        return json.dumps(self.more_ids) if self.more_ids else None

    @functools.cached_property
    def rendered(self) -> PersonalRendering:
        """The personal rendering as strings (for previews; sending uses `data`)."""
        return self.shared.personalise(self.subscriber, self.personal)


class Composer:
    """Builds each subscriber's digest and message from the state (reads only)."""

    def __init__(
        self,
        inputs: Inputs,
        state: State | None,
        items: list[TaggedItem],
        secret: bytes,
        now: datetime,
        run_id: int | None = None,
    ) -> None:
        self.inputs, self.state, self.secret, self.now = inputs, state, secret, now
        self.items = items
        settings = inputs.settings
        self.default_language = settings.default_language
        self.index = ItemIndex(items, self.default_language)
        self.sender = settings.sender_address
        self.list_name = settings.list_name
        self.list_id = settings.list_id_value
        self.default_zone = settings.schedule.timezone
        self.max_items = settings.max_items
        self.links = PersonalLinks(settings, secret, now)
        self.feedback_id = feedback_id(run_id, self.list_id, self.sender.domain)
        self.signer, warning = load_signer(settings.dkim)
        self.warnings = [warning] if warning else []
        # Deliveries a killed run left pending, resent as they were (usually none).
        # With PostgreSQL they are read with each batch of histories instead (`digests`).
        self.pending: dict[str, Delivery] = (
            state.pending_deliveries() if state is not None and not state.shared else {}
        )
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
            if self.state is not None and self.state.shared and resend_pending:
                # Hosts share the run: a row another host left pending may be newer than ours.
                self.pending.update(self.state.pending_deliveries([s.email for s in batch]))
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
            wanted = set(pending.all_ids)
            chosen = tuple(t for t in self.items if t.id in wanted)
        else:
            sent, last = history
            since = window_start(last, self.now, settings.lookback)
            chosen = unsent(self.index.candidates(subscriber), sent, since)
        # Subscribers are sent in preference order, so those with the same preferences and the
        # same new items come one after another and share one digest. Readers of another
        # language come right after (the language ends the order's key) and share it too: the
        # stories and their grouping do not depend on it (`chosen` holds the item languages').
        key = (_arrangement_key(subscriber), today, chosen)
        if key == self._last_key and self._last_digest is not None:
            return dataclasses.replace(self._last_digest, subscriber=subscriber)
        digest = arrange(
            subscriber, chosen, today, taxonomy.regions, taxonomy.topics, zone, self.max_items
        )
        self._last_key, self._last_digest = key, digest
        return digest

    def unsubscribe_url(self, subscriber: Subscriber) -> str:
        return self.links.unsubscribe(subscriber.email)

    def compose(self, digest: Digest, test: bool = False) -> ComposedMessage:
        subscriber = digest.subscriber
        renderer = self.inputs.renderer
        shared = renderer.render_shared(digest)
        message_id = stable_message_id(subscriber.email, shared.shown_ids, self.sender.domain)
        unsubscribe = self.links.unsubscribe(subscriber.email)
        more_ids = listed_on_the_web(digest, shared) if self.links.web_pages else ()
        words = renderer.localiser_of(subscriber)
        personal = Personal.of(
            subscriber,
            unsubscribe,
            words,
            **self.links.personal(subscriber.email, message_id, more_ids),
        )
        message = build_message(
            subject=shared.subject,
            body=shared.body,
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
            feedback_id=self.feedback_id,
            language=words.code,
        )
        if self.signer is not None:
            message = self.signer.sign(message)
        profile = digest_profile(digest, self.default_language) if self.links.web_pages else None
        return ComposedMessage(
            subscriber, digest, shared, personal, message_id, message, profile, more_ids
        )


def _arrangement_key(subscriber: Subscriber) -> tuple[object, ...]:
    """What `arrange` reads of a subscriber besides the items: `preference_key` without the
    language (and the name, which only the rendering reads)."""
    return (
        subscriber.regions,
        subscriber.topics,
        subscriber.group_by,
        subscriber.timezone or "",
        subscriber.order,
    )


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # ZoneInfo keeps one instance per name
