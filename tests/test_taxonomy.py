"""Tagging: whole words, longest match, capitals, given tags, the seed's expected tags."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from digest.errors import TaxonomyError
from digest.models import Item
from digest.sources.listing import read_listing
from digest.taxonomy import load_taxonomy, parse_taxonomy, tag

from .conftest import SEED

TAXONOMY = load_taxonomy()


def tagged(title: str, summary: str = "", **given: tuple[str, ...]):
    return tag(
        Item(id="x", title=title, date=date(2026, 11, 16), summary=summary, **given), TAXONOMY
    )


def test_default_taxonomy_has_the_office_regions_and_topics() -> None:
    assert TAXONOMY.regions == (
        "Central America",
        "North America",
        "Caribbean",
        "South America",
        "Rest of the world",
    )
    for topic in (
        "Labour migration",
        "Children and youth",
        "Smuggling and trafficking",
        "Return and reintegration",
        "Migrant protection",
        "Health",
        "Climate and environment",
        "Data and research",
        "Diaspora",
        "Training and capacity building",
        "Communication",
        "Migration governance",
        "Emergencies and displacement",
    ):
        assert topic in TAXONOMY.topics


# The tags an editor of the office expects for each seed item, in listing order.
SEED_REGIONS = [
    ("Central America",),
    ("Central America",),
    ("Caribbean",),
    ("Central America", "North America"),
    ("Central America",),
    ("Central America", "North America"),  # the Regional Conference on Migration
    ("Caribbean", "South America"),  # Venezuelan migrants in the Caribbean
    (),  # names no place: region-wide
    ("Caribbean",),
    ("Caribbean",),
]


def test_seed_items_get_the_expected_regions() -> None:
    items = [tag(i, TAXONOMY) for i in read_listing(str(SEED))]
    assert [t.regions for t in items] == SEED_REGIONS
    assert items[7].region_wide


@pytest.mark.parametrize(
    ("index", "topic"),
    [
        (0, "Labour migration"),
        (0, "Migrant protection"),
        (1, "Children and youth"),
        (2, "Diaspora"),
        (2, "Data and research"),
        (3, "Communication"),
        (5, "Smuggling and trafficking"),
        (6, "Labour migration"),
        (7, "Smuggling and trafficking"),
        (8, "Return and reintegration"),
        (9, "Training and capacity building"),
    ],
)
def test_seed_items_get_the_expected_topics(index: int, topic: str) -> None:
    item = tag(read_listing(str(SEED))[index], TAXONOMY)
    assert topic in item.topics, item.matches


def test_matches_record_the_words_that_produced_each_tag() -> None:
    item = tag(read_listing(str(SEED))[0], TAXONOMY)
    assert set(item.matches["Central America"]) >= {
        "Belize",
        "Guatemala",
        "Honduras",
        "El Salvador",
    }
    assert "migrant workers" in item.matches["Labour migration"]


def test_dominica_is_not_the_dominican_republic() -> None:
    assert tagged("Storm recovery in Dominica").regions == ("Caribbean",)
    republic = tagged("Returns to the Dominican Republic")
    assert republic.matches["Caribbean"] == ("Dominican Republic",)


def test_whole_words_only() -> None:
    assert tagged("Perulandia and Chilean-style cooking").regions == ("South America",)  # Chilean
    assert tagged("A Cubano sandwich").regions == ()
    assert tagged("A Peruvian band").regions == ("South America",)


def test_short_capitals_only_match_as_written() -> None:
    assert tagged("Tell us who you are").regions == ()
    assert "Health" not in tagged("Tell us who you are").topics
    assert tagged("US announces a new parole programme").regions == ("North America",)
    assert "Health" in tagged("WHO warns of dengue").topics


def test_spaces_in_terms_match_hyphens() -> None:
    assert "Training and capacity building" in tagged("A capacity-building workshop").topics


def test_rest_of_the_world_comes_from_the_country_list() -> None:
    sudan = tagged("Sudan: new arrivals in Chad", "Refugees keep crossing from Darfur.")
    assert sudan.regions == ("Rest of the world",)
    assert tagged("Nepal earthquake").regions == ("Rest of the world",)
    assert tagged("Migrants from Venezuela reach Mexico").regions == (
        "North America",
        "South America",
    )


def test_case_insensitive() -> None:
    assert tagged("HONDURAN FAMILIES RETURN").regions == ("Central America",)


def test_tags_given_by_the_source_are_kept() -> None:
    item = tagged("A story", regions=("Caribbean",), topics=("Health",))
    assert item.regions == ("Caribbean",)
    assert item.topics == ("Health",)
    assert item.matches["Caribbean"] == ("(given by source)",)


def test_feed_categories_naming_known_tags_become_tags() -> None:
    item = tagged("A story", categories=("Diaspora", "misc"))
    assert item.topics == ("Diaspora",)


def test_a_replacement_taxonomy_file(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(
        "regions:\n  Islands:\n    terms: [Jamaica]\n  Elsewhere:\n    rest: true\n"
        "topics:\n  Boats:\n    terms: [boat, boats]\n"
    )
    custom = load_taxonomy(path)
    item = tag(Item(id="1", title="Boats leave Jamaica for Japan", date=date(2026, 1, 1)), custom)
    assert item.regions == ("Islands", "Elsewhere")
    assert item.topics == ("Boats",)


def test_a_malformed_taxonomy_names_file_and_line() -> None:
    with pytest.raises(TaxonomyError, match=r"t\.yaml:3: region 'B': expected a mapping"):
        parse_taxonomy("regions:\n  A: {terms: [x]}\n  B: 5\n", "t.yaml")
    with pytest.raises(TaxonomyError, match=r"unknown ISO country code 'XX'"):
        parse_taxonomy("regions:\n  A:\n    countries: [XX]\n", "t.yaml")
