"""Each source format, the seed listing, deduplication and unreadable sources."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from digest.errors import SourceError
from digest.sources import read_sources
from digest.sources.feed import html_to_text
from digest.sources.listing import parse_listing, read_listing
from digest.sources.markdown import parse_markdown
from digest.taxonomy import load_taxonomy

from .conftest import DATA, SEED

SEED_TITLES = [
    "Four countries discuss the role of their consular staff in protecting migrant workers",
    "El Salvador and Belize share experiences in protecting migrant children and adolescents",
    "IOM and the Organization of Eastern Caribbean States partner to strengthen migration "
    "management in the region",
    "Young people from Mexico and Central America train in the creation of digital content "
    "about migration",
    "Communication experts advance towards a better understanding of migration in Honduras",
    "RCM concludes a week of technical exchange on migrant smuggling",
    "IOM concludes capacity-building workshop to aid in the integration of Venezuelan migrants "
    "into Caribbean labour markets",
    'More than 180 young people start Virtual Camp on Migration, in preparation for "Think It '
    'Twice" campaign',
    "IOM emphasizes the need for holistic approaches to reception and reintegration of "
    "returnees to the Caribbean at capacity-building sessions",
    "IOM signs collaboration agreement with the Dominican Republic Migration Institute, for the "
    "development of educational platforms and programs",
]


def known() -> set[str]:
    taxonomy = load_taxonomy()
    return {*taxonomy.regions, *taxonomy.topics}


def test_seed_listing_gives_its_ten_items_in_order() -> None:
    items = read_listing(str(SEED))
    assert [i.title for i in items] == SEED_TITLES
    assert items[0].date == date(2020, 10, 13)
    assert items[-1].date == date(2020, 9, 8)
    assert items[0].summary.startswith("On September 23, a multilateral table")
    assert items[3].summary.startswith("From September 8 to 11, young people")
    assert len({i.id for i in items}) == 10
    assert all(i.link is None for i in items)


def test_listing_ids_are_stable_and_derived_from_date_and_title() -> None:
    first = read_listing(str(SEED))
    again = read_listing(str(SEED))
    assert [i.id for i in first] == [i.id for i in again]
    assert first[0].id.startswith("2020-10-13-")


def test_listing_without_items_names_the_file() -> None:
    with pytest.raises(SourceError, match=r"notes\.txt: no items found"):
        parse_listing("Just some notes\nwithout dates\n", "notes.txt")


def test_listing_date_without_title_names_the_line() -> None:
    with pytest.raises(SourceError, match=r"news\.txt:4: date line with no title"):
        parse_listing("1 May, 2026\n\nTitle\n2 May, 2026\n\n", "news.txt")


def test_markdown_item_with_front_matter_and_given_tags() -> None:
    [item] = parse_markdown((DATA / "item.md").read_text(), "item.md")
    assert item.title == "Guatemala opens a new centre for returned migrants"
    assert item.date == date(2026, 11, 17)
    assert item.link == "https://example.org/news/guatemala-returns"
    assert item.id == item.link
    assert item.topics == ("Return and reintegration",)
    assert item.summary == (
        "The centre in Guatemala City will receive families returned by air.\n\nA second paragraph."
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter", r"x\.md:1: no front matter"),
        ("---\ntitle: T\n---\n", r"x\.md:2: 'date': expected a date"),
        (
            "---\ntitle: T\ndate: 2026-11-01\ncolour: red\n---\n",
            r"x\.md:4: unknown front matter key 'colour'",
        ),
        ("---\ntitle: [unclosed\n---\n", r"x\.md:\d+: front matter"),
        ("---\ndate: 2026-11-01\n---\nbody", r"x\.md:\d+: 'title'"),
        ("---\ntitle: T\ndate: 2026-11-01\nlink: javascript:alert(1)\n---\n", r"x\.md:4: 'link'"),
    ],
)
def test_markdown_errors_name_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_markdown(text, "x.md")


def test_rss_feed_items_have_guid_ids_and_plain_text() -> None:
    result = read_sources([str(DATA / "feed.rss")], known())
    assert not result.problems
    haiti, sudan = result.items
    assert haiti.id == "wire-0001"
    assert haiti.title == "Haiti: displacement rises after floods"
    assert haiti.summary == (
        "More than 5,000 people were displaced in Port-au-Prince & nearby.\n\nShelters are full."
    )
    assert "alert" not in haiti.summary
    assert haiti.date == date(2026, 11, 16)
    assert haiti.categories == ("Emergencies and displacement", "weather")
    assert sudan.id == "https://news.example.org/sudan-chad"  # no guid: the link


def test_atom_feed() -> None:
    [item] = read_sources([str(DATA / "feed.atom")], known()).items
    assert item.title == "Jamaica and Dominica sign a labour mobility agreement"
    assert item.link == "https://caribbean.example.org/labour-mobility"
    assert item.summary == "Seasonal workers from Kingston will be able to work in Roseau."
    assert item.date == date(2026, 11, 18)


def test_broken_feed_is_reported_and_the_other_sources_still_load(tmp_path: Path) -> None:
    for name in ("broken.rss", "feed.atom", "item.md"):
        shutil.copy(DATA / name, tmp_path / name)
    shutil.copy(SEED, tmp_path / "news.txt")
    result = read_sources([str(tmp_path)], known())
    assert len(result.items) == 12
    [problem] = result.problems
    assert "broken.rss" in problem.message and "not a readable RSS or Atom feed" in problem.message


def test_unreachable_feed_url_is_reported_with_its_address() -> None:
    result = read_sources(["http://127.0.0.1:9/feed.xml", str(SEED)], known())
    assert len(result.items) == 10
    [problem] = result.problems
    assert problem.message.startswith("http://127.0.0.1:9/feed.xml: cannot fetch feed")


def test_unknown_region_in_a_source_is_reported_and_the_item_skipped() -> None:
    result = read_sources([str(DATA / "bad-region.md"), str(DATA / "item.md")], known())
    assert [i.title for i in result.items] == ["Guatemala opens a new centre for returned migrants"]
    [problem] = result.problems
    assert "bad-region.md" in problem.message and "'Carribean'" in problem.message


def test_same_story_from_two_sources_is_one_item(tmp_path: Path) -> None:
    shutil.copy(SEED, tmp_path / "a.txt")
    shutil.copy(SEED, tmp_path / "b.txt")
    (tmp_path / "c.md").write_text(
        "---\ntitle: RCM concludes a week of technical exchange on migrant smuggling\n"
        "date: 2020-09-15\n---\nSame story, told again.\n"
    )
    result = read_sources([str(tmp_path)], known())
    assert len(result.items) == 10
    assert result.files == 3


def test_same_link_from_two_sources_is_one_item(tmp_path: Path) -> None:
    shutil.copy(DATA / "feed.rss", tmp_path / "feed.rss")
    (tmp_path / "copy.md").write_text(
        "---\ntitle: Haiti displacement (reposted)\ndate: 2026-11-16\n"
        "link: https://news.example.org/haiti-floods\n---\nText.\n"
    )
    result = read_sources([str(tmp_path)], known())
    assert len(result.items) == 2


def test_html_to_text_decodes_entities_and_drops_scripts() -> None:
    assert html_to_text("<p>A &amp; B</p><style>p{}</style><p>C&nbsp;D</p>") == "A & B\n\nC D"
