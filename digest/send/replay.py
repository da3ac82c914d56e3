"""A digest already sent, built again from its delivery record, for `digest serve`: the email
in the browser ("view in your browser"), and the page of every story of its period.

Nothing per subscriber is stored but the delivery row: its items (those in the email, and
those listed on the web past `max_items`) and its profile (the name, settings, period and
language it was made with). The items come from the state; the rendering from the templates
as they are now.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from ..compose.render import Personal, PersonalRendering, Renderer
from ..languages import SOURCE_LANGUAGE, reader_language
from ..models import Digest, Subscriber, TaggedItem
from ..selection import arrange, newest_first
from ..settings import Settings
from ..state import Delivery, State
from ..taxonomy import Taxonomy
from .links import PersonalLinks
from .pickup import tagged_items_by_id


@dataclass(frozen=True)
class SentDigest:
    """A delivery with what it was made of: the digest as in the email (its `more` being the
    stories listed on the web), and the digest of every story of the period."""

    delivery: Delivery
    subscriber: Subscriber
    email_digest: Digest | None
    every_story: Digest | None


def _subscriber(delivery: Delivery, profile: dict[str, Any]) -> Subscriber:
    return Subscriber(
        email=delivery.subscriber,
        name=str(profile.get("name") or ""),
        regions=tuple(profile.get("regions") or ()),
        topics=tuple(profile.get("topics") or ()),
        group_by=str(profile.get("group_by") or "region"),
        order=str(profile.get("order") or "newest"),
        frequency=str(profile.get("frequency") or "weekly"),
        timezone=profile.get("timezone"),
        # Written in this language (deliveries from before languages: English).
        language=reader_language(profile.get("language")) or SOURCE_LANGUAGE,
        item_languages=tuple(
            code for code in map(reader_language, profile.get("item_languages") or ()) if code
        ),
    )


def sent_digest(state: State, taxonomy: Taxonomy, delivery: Delivery) -> SentDigest:
    """The delivery's digests, from the items the state still holds."""
    profile = delivery.profile or {}
    subscriber = _subscriber(delivery, profile)
    found = {t.id: t for t in tagged_items_by_id(state, taxonomy, delivery.all_ids)}
    shown = [found[i] for i in delivery.item_ids if i in found]
    more = [found[i] for i in delivery.more_ids if i in found]
    end = _day(profile.get("period_end")) or delivery.created_at.date()
    start = _day(profile.get("period_start")) or end

    def arranged(items: list[TaggedItem], more: tuple[TaggedItem, ...] = ()) -> Digest | None:
        digest = arrange(subscriber, items, end, taxonomy.regions, taxonomy.topics)
        return replace(digest, period_start=start, more=more) if digest else None

    return SentDigest(
        delivery,
        subscriber,
        arranged(shown, tuple(newest_first(more))),
        arranged(shown + more),
    )


def _day(text: Any) -> date | None:
    try:
        return date.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def render_again(
    sent: SentDigest, renderer: Renderer, settings: Settings, secret: bytes, now: Any
) -> PersonalRendering | None:
    """The email as it was sent (with fresh personal links), or None if its stories are gone."""
    if sent.email_digest is None:
        return None
    links = PersonalLinks(settings, secret, now)
    email = sent.subscriber.email
    personal = Personal.of(
        sent.subscriber,
        links.unsubscribe(email),
        renderer.localiser_of(sent.subscriber),
        **links.personal(email, sent.delivery.message_id, sent.delivery.more_ids),
    )
    return renderer.render(sent.email_digest, personal)
