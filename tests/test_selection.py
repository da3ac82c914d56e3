"""Who gets what: matching, the new-item window, grouping and order (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from digest.models import Item, Subscriber, TaggedItem
from digest.selection import (
    REGION_WIDE,
    ItemIndex,
    build_digest,
    flatten,
    matches,
    newest_first,
    truncate,
    window_start,
)
from digest.sources.listing import read_listing
from digest.taxonomy import load_taxonomy, tag

from .conftest import SEED

TAXONOMY = load_taxonomy()
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def seed_items(first_seen: datetime = NOW - timedelta(hours=1)) -> list[TaggedItem]:
    return [
        TaggedItem(t.item, t.regions, t.topics, t.matches, first_seen)
        for t in (tag(i, TAXONOMY) for i in read_listing(str(SEED)))
    ]


def item(title: str, regions=(), topics=(), day: int = 16, seen: datetime = NOW) -> TaggedItem:
    return TaggedItem(
        Item(id=title, title=title, date=date(2026, 11, day)),
        tuple(regions),
        tuple(topics),
        {},
        seen,
    )


def digest_for(
    subscriber: Subscriber,
    items: list[TaggedItem],
    sent: set[str] = frozenset(),
    last: datetime | None = None,
):
    return build_digest(
        subscriber,
        items,
        set(sent),
        window_start(last, NOW, timedelta(days=14)),
        NOW.date(),
        TAXONOMY.regions,
        TAXONOMY.topics,
    )


def test_regions_and_topics_must_both_meet() -> None:
    ana = Subscriber("ana@example.org", regions=("Central America",), topics=("Health",))
    assert matches(ana, item("a", ["Central America"], ["Health", "Diaspora"]))
    assert not matches(ana, item("b", ["Caribbean"], ["Health"]))
    assert not matches(ana, item("c", ["Central America"], ["Diaspora"]))
    assert not matches(ana, item("d", ["Central America"], []))


def test_region_wide_items_go_to_everyone_whose_topics_match() -> None:
    ana = Subscriber("ana@example.org", regions=("Caribbean",), topics=("Health",))
    assert matches(ana, item("wide", [], ["Health"]))
    assert not matches(ana, item("wide", [], ["Diaspora"]))


def test_empty_preferences_mean_everything() -> None:
    everyone = Subscriber("all@example.org")
    assert matches(everyone, item("x", ["Rest of the world"], []))


def test_rest_of_the_world_does_not_reach_a_caribbean_subscriber() -> None:
    caribbean = Subscriber("c@example.org", regions=("Caribbean",))
    assert not matches(
        caribbean, item("Sudan", ["Rest of the world"], ["Emergencies and displacement"])
    )


def test_seed_digest_for_a_central_america_labour_subscriber() -> None:
    ana = Subscriber("ana@example.org", regions=("Central America",), topics=("Labour migration",))
    digest = digest_for(ana, seed_items())
    assert digest is not None
    titles = [t.item.title for t in digest.items]
    assert titles == [
        "Four countries discuss the role of their consular staff in protecting migrant workers",
        'More than 180 young people start Virtual Camp on Migration, in preparation for "Think '
        'It Twice" campaign',
    ]
    assert [s.title for s in digest.sections] == ["Central America", REGION_WIDE]


def test_sections_follow_the_subscribers_order_and_each_item_appears_once() -> None:
    lucia = Subscriber(
        "l@example.org",
        regions=("North America", "Central America"),
        topics=("Communication", "Children and youth"),
    )
    digest = digest_for(lucia, seed_items())
    assert digest is not None
    assert [s.title for s in digest.sections][:2] == ["North America", "Central America"]
    north = digest.sections[0]
    assert [s.title for s in north.sections] == ["Communication", "Children and youth"][
        : len(north.sections)
    ]
    shown = [t.id for t in flatten(digest.sections)]
    assert len(shown) == len(set(shown)) == len(digest.items)


def test_group_by_topic_puts_topics_outside_and_regions_inside() -> None:
    research = Subscriber("r@example.org", topics=("Data and research", "Health"), group_by="topic")
    digest = digest_for(research, seed_items())
    assert digest is not None
    # The OECS item is about both: it shows once, under the first topic the subscriber listed.
    assert [s.title for s in digest.sections] == ["Data and research", "Health"]
    assert digest.sections[0].count == 1
    assert all(
        sub.title in (*TAXONOMY.regions, REGION_WIDE) for s in digest.sections for sub in s.sections
    )


def test_newest_first_within_a_section() -> None:
    items = [
        item("old", ["Caribbean"], day=2),
        item("new", ["Caribbean"], day=20),
        item("mid", ["Caribbean"], day=10),
    ]
    digest = digest_for(Subscriber("c@example.org", regions=("Caribbean",)), items)
    assert digest is not None
    assert [t.item.title for t in flatten(digest.sections)] == ["new", "mid", "old"]


def test_nothing_new_means_no_digest() -> None:
    subscriber = Subscriber("c@example.org")
    items = seed_items()
    assert digest_for(subscriber, items, sent={t.id for t in items}) is None
    assert (
        digest_for(
            Subscriber("x@example.org", regions=("Rest of the world",), topics=("Diaspora",)), items
        )
        is None
    )


def test_first_digest_holds_items_picked_up_within_the_lookback() -> None:
    fresh = seed_items(first_seen=NOW - timedelta(days=1))  # 2020 items picked up yesterday
    stale = [item("picked up long ago", ["Caribbean"], seen=NOW - timedelta(days=30))]
    digest = digest_for(Subscriber("c@example.org"), fresh + stale)
    assert digest is not None
    assert len(digest.items) == 10


def test_later_digests_hold_items_since_the_last_one_and_never_resend() -> None:
    last = NOW - timedelta(days=7)
    items = [
        item("sent last week", ["Caribbean"], seen=last - timedelta(days=1)),
        item("picked up after", ["Caribbean"], seen=last + timedelta(days=1)),
        item("too old", ["Caribbean"], seen=last - timedelta(days=20)),
    ]
    digest = digest_for(Subscriber("c@example.org"), items, sent={"sent last week"}, last=last)
    assert digest is not None
    assert [t.item.title for t in digest.items] == ["picked up after"]


def test_truncate_keeps_the_first_items_in_display_order() -> None:
    digest = digest_for(Subscriber("n@example.org"), seed_items())
    assert digest is not None
    kept = truncate(digest.sections, 3)
    assert [t.id for t in flatten(kept)] == [t.id for t in flatten(digest.sections)][:3]


def test_the_item_index_gives_what_a_scan_would() -> None:
    items = seed_items() + [item("wide", [], ["Health"]), item("rest", ["Rest of the world"], [])]
    index = ItemIndex(items)
    for subscriber in (
        Subscriber("a@x.org"),
        Subscriber("b@x.org", regions=("Caribbean",)),
        Subscriber("c@x.org", topics=("Health", "Diaspora")),
        Subscriber(
            "d@x.org", regions=("Central America", "South America"), topics=("Labour migration",)
        ),
        Subscriber("e@x.org", regions=("Rest of the world",), topics=("Health",)),
    ):
        scanned = [t.id for t in newest_first(items) if matches(subscriber, t)]
        assert [t.id for t in index.candidates(subscriber)] == scanned
