"""Frozen values passed between the stages: items in, digests and rendered emails out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Item:
    """One news item as a source gave it."""

    id: str
    title: str
    date: date
    summary: str = ""
    link: str | None = None
    source: str = ""
    regions: tuple[str, ...] = ()  # tags the source gave, kept as they are
    topics: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # a feed's free-text categories; known names become tags
    language: str | None = None  # en, es or fr; None: unknown (tagging then tries them all)


@dataclass(frozen=True)
class TaggedItem:
    """An item with its regions and topics, and the words that produced each tag."""

    item: Item
    regions: tuple[str, ...]
    topics: tuple[str, ...]
    matches: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)
    first_seen: datetime | None = None
    # words that named a tag but did not give it, and why (an ambiguous place, a topic word
    # with no migration word near it)
    withheld: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return self.item.id

    @property
    def region_wide(self) -> bool:
        return not self.regions


def address_key(email: str) -> str:
    """How addresses are compared everywhere: stripped and casefolded."""
    return email.strip().casefold()


@dataclass(frozen=True, slots=True)
class Subscriber:
    email: str
    name: str = ""
    regions: tuple[str, ...] = ()  # empty: every region
    topics: tuple[str, ...] = ()  # empty: every topic
    group_by: str = "region"
    frequency: str = "weekly"
    order: str = "newest"  # inside each group: newest | oldest first
    timezone: str | None = None
    language: str | None = None  # en | es | fr; None: the settings' default_language
    item_languages: tuple[str, ...] = ()  # languages of news wanted; empty: their language
    line: int = 0

    def reads(self, default_language: str) -> str:
        """The language their digest is written in."""
        return self.language or default_language

    def news_languages(self, default_language: str) -> tuple[str, ...]:
        """The languages of the news they receive."""
        return self.item_languages or (self.reads(default_language),)


@dataclass(frozen=True)
class Section:
    """A heading with items, or with subsections (region -> topic, or topic -> region)."""

    title: str
    items: tuple[TaggedItem, ...] = ()
    sections: tuple[Section, ...] = ()

    @property
    def count(self) -> int:
        return len(self.items) + sum(s.count for s in self.sections)


@dataclass(frozen=True)
class Digest:
    """What one subscriber gets: the items, newest first, grouped as they asked."""

    subscriber: Subscriber
    items: tuple[TaggedItem, ...]
    sections: tuple[Section, ...]
    period_start: date
    period_end: date
    # Matching items past `max_items` (the oldest): listed on the web, not in the email.
    more: tuple[TaggedItem, ...] = ()

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.items)


@dataclass(frozen=True)
class SourceRecord:
    """A source as it was when last read."""

    location: str
    fingerprint: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    checked_at: datetime | None = None
    error: str | None = None
