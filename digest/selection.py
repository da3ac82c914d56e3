"""Which items each subscriber gets, and how they are grouped (pure functions).

An item goes to a subscriber when its regions meet theirs (an item naming no place is
region-wide and goes to everyone), its topics meet theirs (an empty list means "all"), and it
is in a language they read news in (`item_languages`, by default their own language; an item
whose language could not be told counts as `default_language`).
"New" is measured by pickup time: eligible items were first seen since the subscriber's last
digest minus `lookback` (or in the last `lookback` for a first digest) and not sent to them yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo

from .models import Digest, Section, Subscriber, TaggedItem

REGION_WIDE = "Across the region"
OTHER_TOPICS = "Other news"
DEFAULT_LANGUAGE = "en"


def matches(
    subscriber: Subscriber, item: TaggedItem, default_language: str = DEFAULT_LANGUAGE
) -> bool:
    region_ok = (
        item.region_wide
        or not subscriber.regions
        or bool(set(item.regions) & set(subscriber.regions))
    )
    topic_ok = not subscriber.topics or bool(set(item.topics) & set(subscriber.topics))
    language = item.item.language or default_language
    return region_ok and topic_ok and language in subscriber.news_languages(default_language)


def window_start(last_sent_at: datetime | None, now: datetime, lookback: timedelta) -> datetime:
    """Items first seen before this are not news to the subscriber any more."""
    return (last_sent_at or now) - lookback


def newest_first(items: Iterable[TaggedItem]) -> list[TaggedItem]:
    return sorted(
        items,
        key=lambda t: (t.item.date, t.first_seen or datetime.min, t.item.title),
        reverse=True,
    )


def _group(
    items: list[TaggedItem], keys: tuple[str, ...], key_of: str, wide_title: str | None
) -> list[tuple[str, list[TaggedItem]]]:
    """Put each item under the first of `keys` it has (each item once), in `keys` order."""
    groups: dict[str, list[TaggedItem]] = {k: [] for k in keys}
    leftovers: list[TaggedItem] = []
    for item in items:
        tags = getattr(item, key_of)
        home = next((k for k in keys if k in tags), None)
        if home is None:
            leftovers.append(item)
        else:
            groups[home].append(item)
    result = [(k, v) for k, v in groups.items() if v]
    if leftovers and wide_title:
        result.append((wide_title, leftovers))
    return result


def build_sections(
    items: list[TaggedItem],
    subscriber: Subscriber,
    all_regions: tuple[str, ...],
    all_topics: tuple[str, ...],
) -> tuple[Section, ...]:
    """Sections by region then topic (or the reverse), in the order the subscriber listed them.

    Region-wide items get their own region section; items with no listed topic go under
    "Other news" inside their group.
    """
    regions = subscriber.regions or all_regions
    topics = subscriber.topics or all_topics
    if subscriber.group_by == "topic":
        outer, inner = (topics, "topics", OTHER_TOPICS), (regions, "regions", REGION_WIDE)
    else:
        outer, inner = (regions, "regions", REGION_WIDE), (topics, "topics", OTHER_TOPICS)
    sections = []
    for title, group in _group(items, *outer):
        subsections = tuple(
            Section(title=sub_title, items=tuple(sub_items))
            for sub_title, sub_items in _group(group, *inner)
        )
        sections.append(Section(title=title, sections=subsections))
    return tuple(sections)


def unsent(
    items: Iterable[TaggedItem], already_sent: set[str] | frozenset[str], since: datetime
) -> tuple[TaggedItem, ...]:
    """The items first seen since `since` and not sent yet, in their order."""
    return tuple(
        t
        for t in items
        if t.id not in already_sent and (t.first_seen is None or t.first_seen >= since)
    )


def build_digest(
    subscriber: Subscriber,
    items: Iterable[TaggedItem],
    already_sent: set[str],
    since: datetime,
    today: date,
    all_regions: tuple[str, ...],
    all_topics: tuple[str, ...],
    only_ids: Iterable[str] | None = None,
    zone: tzinfo = UTC,
    max_items: int | None = None,
    default_language: str = DEFAULT_LANGUAGE,
) -> Digest | None:
    """The subscriber's digest, or None when they have nothing new.

    With `only_ids` (resending an interrupted delivery) exactly those items are used. The
    period runs from the day the oldest item was picked up to `today`, both in `zone`.
    """
    if only_ids is not None:
        wanted = set(only_ids)
        chosen = [t for t in items if t.id in wanted]
    else:
        chosen = [
            t
            for t in unsent(items, already_sent, since)
            if matches(subscriber, t, default_language)
        ]
    return arrange(subscriber, chosen, today, all_regions, all_topics, zone, max_items)


def arrange(
    subscriber: Subscriber,
    chosen: Iterable[TaggedItem],
    today: date,
    all_regions: tuple[str, ...],
    all_topics: tuple[str, ...],
    zone: tzinfo = UTC,
    max_items: int | None = None,
) -> Digest | None:
    """The digest of exactly these items, grouped as the subscriber asked, newest (or, as they
    chose, oldest) first inside each group; None when there are none. Past `max_items` the
    most recent are kept and the rest are the digest's `more`. It depends on the subscriber's
    `preference_key` only, apart from the `subscriber` field itself."""
    ordered = newest_first(chosen)
    if not ordered:
        return None
    kept = ordered[:max_items] if max_items else ordered
    more = ordered[len(kept) :]
    if subscriber.order == "oldest":
        kept = kept[::-1]
    seen = [t.first_seen.astimezone(zone).date() for t in ordered if t.first_seen is not None]
    return Digest(
        subscriber=subscriber,
        items=tuple(kept),
        sections=build_sections(kept, subscriber, all_regions, all_topics),
        period_start=min(seen, default=today),
        period_end=today,
        more=tuple(more),
    )


def flatten(sections: Iterable[Section]) -> list[TaggedItem]:
    """Items in the order the email shows them."""
    result: list[TaggedItem] = []
    for section in sections:
        result.extend(section.items)
        result.extend(flatten(section.sections))
    return result


def truncate(sections: tuple[Section, ...], keep: int) -> tuple[Section, ...]:
    """The first `keep` items in display order, sections that end up empty dropped."""
    result = []
    for section in sections:
        if keep <= 0:
            break
        items = section.items[:keep]
        keep -= len(items)
        subsections = truncate(section.sections, keep)
        keep -= sum(s.count for s in subsections)
        if items or subsections:
            result.append(Section(title=section.title, items=items, sections=subsections))
    return tuple(result)


_CandidatesKey = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # regions, topics, langs


class ItemIndex:
    """The items by region and topic, so each subscriber's candidates are a few set
    operations instead of a scan of every item (100,000 subscribers × hundreds of items).
    A send asks in preference order, the same regions and topics one after another, so a few
    hundred answers kept are as good as all of them (thousands, each a list of items)."""

    KEPT = 256

    def __init__(
        self, items: Iterable[TaggedItem], default_language: str = DEFAULT_LANGUAGE
    ) -> None:
        self.items = newest_first(items)
        self.default_language = default_language
        self.every: frozenset[int] = frozenset(range(len(self.items)))
        self.by_region: dict[str, set[int]] = {}
        self.by_topic: dict[str, set[int]] = {}
        self.by_language: dict[str, set[int]] = {}
        self.region_wide: set[int] = set()
        for number, tagged in enumerate(self.items):
            language = tagged.item.language or default_language
            self.by_language.setdefault(language, set()).add(number)
            if tagged.region_wide:
                self.region_wide.add(number)
            for region in tagged.regions:
                self.by_region.setdefault(region, set()).add(number)
            for topic in tagged.topics:
                self.by_topic.setdefault(topic, set()).add(number)
        self._cache: dict[_CandidatesKey, list[TaggedItem]] = {}

    def candidates(self, subscriber: Subscriber) -> list[TaggedItem]:
        """Every item matching the subscriber's regions, topics and languages, newest first."""
        languages = subscriber.news_languages(self.default_language)
        key = (subscriber.regions, subscriber.topics, languages)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        chosen: set[int] | frozenset[int] = set().union(
            *(self.by_language.get(language, ()) for language in languages)
        )
        if len(chosen) == len(self.items):
            chosen = self.every
        if subscriber.regions:
            chosen = chosen & self.region_wide.union(
                *(self.by_region.get(r, ()) for r in subscriber.regions)
            )
        if subscriber.topics:
            chosen = chosen & set().union(*(self.by_topic.get(t, ()) for t in subscriber.topics))
        result = [self.items[n] for n in sorted(chosen)]
        if len(self._cache) >= self.KEPT:
            self._cache.clear()
        self._cache[key] = result
        return result


def preference_key(subscriber: Subscriber, language: bool = True) -> tuple[object, ...]:
    """What decides a subscriber's digest apart from their address. (The default order and
    language add nothing, so subscribers who keep them have the keys, and the worker shares,
    they had.) Two languages never share a key, so never a rendering. `language=False`: the
    key without the language, which decides the worker (readers of every language with the
    same preferences then come one after another and share the digest's arrangement)."""
    key: tuple[object, ...] = (
        subscriber.regions,
        subscriber.topics,
        subscriber.group_by,
        subscriber.timezone or "",
        bool(subscriber.name),
    )
    if subscriber.order != "newest":
        key = (*key, subscriber.order)
    if language and (subscriber.language or subscriber.item_languages):
        key = (*key, "language", subscriber.language or "", subscriber.item_languages)
    return key
