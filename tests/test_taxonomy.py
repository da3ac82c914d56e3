"""Tagging: whole words, longest match, capitals, given tags, the seed's expected tags."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from digest.errors import TaxonomyError
from digest.models import Item
from digest.sources.listing import read_listing
from digest.taxonomy import find_tags, load_taxonomy, parse_taxonomy, tag

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


# Issues 16 and 17: places anywhere in the world, ambiguity, accents, languages, context.


def tagged_in(language: str | None, title: str, summary: str = "", defaults=()):
    item = Item(id="x", title=title, date=date(2026, 11, 16), summary=summary, language=language)
    return tag(item, TAXONOMY, defaults)


@pytest.mark.parametrize(
    "name",
    [
        "Russia",
        "Iran",
        "Syria",
        "South Korea",
        "North Korea",
        "Vietnam",
        "Laos",
        "Tanzania",
        "Moldova",
        "Czechia",
        "Czech Republic",
        "Burma",
        "Ivory Coast",
        "Côte d'Ivoire",
        "Côte d’Ivoire",
        "Cote d'Ivoire",
        "Türkiye",
    ],
)
def test_countries_under_the_names_people_write(name: str) -> None:
    item = tagged(f"Elections in {name}")
    assert item.regions == ("Rest of the world",), item.matches


@pytest.mark.parametrize(
    ("name", "region"), [("Bolivia", "South America"), ("Venezuela", "South America")]
)
def test_countries_of_the_americas_too(name: str, region: str) -> None:
    assert tagged(f"Elections in {name}").regions == (region,)


def test_the_putin_story_no_longer_reaches_the_caribbean() -> None:
    item = tagged("Putin Thanks Trump for Helping Russia Thwart Terrorist Attack")
    assert item.regions == ("Rest of the world",)


@pytest.mark.parametrize(
    "word",
    ["French", "German", "Estonian", "Estonians", "Turkmen", "Thai", "Israeli", "Australian"],
)
def test_english_demonyms(word: str) -> None:
    assert tagged(f"{word} officials meet").regions == ("Rest of the world",)


@pytest.mark.parametrize("city", ["Beirut", "Ashgabat", "Suva", "Queensland", "Kathmandu"])
def test_capitals_cities_and_states(city: str) -> None:
    assert tagged(f"Floods in {city}").regions == ("Rest of the world",)


@pytest.mark.parametrize(
    "title",
    [
        "Have a Nice Day",
        "Reading Is Good",
        "Mobile Phones",
        "A Split Decision",
        "Orange Juice",
        "Sale Ends Friday",
    ],
)
def test_places_named_like_everyday_words_are_left_out(title: str) -> None:
    assert tagged(title).regions == ()


def test_a_lower_case_word_is_not_a_place() -> None:
    assert tagged("roast turkey with chile sauce").regions == ()
    assert tagged("Roast Turkey").regions == ("Rest of the world",)  # a capital: the country


@pytest.mark.parametrize(
    ("language", "text", "region"),
    [
        ("es", "Los rusos votan", "Rest of the world"),
        ("es", "Una delegación rusa visita Madrid", "Rest of the world"),
        ("es", "El presidente francés llega a Argel", "Rest of the world"),
        ("es", "Familias mexicanas esperan en la frontera", "North America"),
        ("es", "Migrantes hondureños retornan", "Central America"),
        ("fr", "Des migrants haïtiens bloqués", "Caribbean"),
        ("fr", "Les Haïtiennes de Miami", "Caribbean"),
        ("fr", "Les Russes votent", "Rest of the world"),
        ("fr", "Un Mexicain arrêté", "North America"),
    ],
)
def test_spanish_and_french_demonyms(language: str, text: str, region: str) -> None:
    assert region in tagged_in(language, text).regions


def test_a_demonym_counts_only_in_its_language() -> None:
    assert tagged_in("en", "Chinos and a sweater").regions == ()
    assert tagged_in("es", "Turistas chinos en la playa").regions == ("Rest of the world",)


def test_spanish_and_french_country_and_city_names() -> None:
    assert tagged_in("es", "Elecciones en Rusia").regions == ("Rest of the world",)
    assert tagged_in("fr", "Élections en Russie").regions == ("Rest of the world",)
    assert tagged_in("es", "Protestas en Moscú").regions == ("Rest of the world",)
    assert tagged_in("fr", "Visite à Moscou").regions == ("Rest of the world",)
    assert tagged_in("es", "Llegada a Londres").regions == ("Rest of the world",)
    assert tagged_in("es", "Reunión de ministros en Centroamérica").regions == ("Central America",)


@pytest.mark.parametrize(
    ("accented", "plain"),
    [("Panamá", "Panama"), ("México", "Mexico"), ("Haïti", "Haiti"), ("Perú", "Peru")],
)
def test_accents_are_ignored(accented: str, plain: str) -> None:
    assert tagged(f"News from {accented}").regions == tagged(f"News from {plain}").regions != ()


def test_accents_still_whole_words() -> None:
    assert tagged("Panamás and Peruvianism").regions == ()


def test_an_ambiguous_place_alone_is_withheld_and_says_why() -> None:
    item = tagged("Cartagena celebrates its festival")
    assert item.regions == ()
    assert "Colombia (South America)" in item.withheld["Cartagena"]
    assert "Spain (Rest of the world)" in item.withheld["Cartagena"]


@pytest.mark.parametrize(
    ("text", "regions"),
    [
        ("Cartagena, Colombia, hosts a summit", ("South America",)),
        ("Cartagena (Murcia) recupera su muralla", ("Rest of the world",)),
        ("Granada, Nicaragua, welcomes cruise ships", ("Central America",)),
        ("Georgia election workers testify in Atlanta", ("North America",)),
        ("Protests in Georgia: crowds fill Tbilisi", ("Rest of the world",)),
        ("San José: Costa Rica's capital braces for storms", ("Central America",)),
        ("Córdoba wildfires spread across Argentina", ("South America",)),
        ("Santiago, Dominican Republic, counts its losses", ("Caribbean",)),
        ("Granada in Central America", ("Central America",)),
    ],
)
def test_a_country_or_larger_place_in_the_item_resolves_ambiguity(text: str, regions) -> None:
    assert tagged(text).regions == regions


def test_the_source_default_resolves_ambiguity_among_the_candidates() -> None:
    murcia = tagged_in("es", "Cartagena celebra sus fiestas", defaults=("Rest of the world",))
    assert murcia.regions == ("Rest of the world",)
    assert murcia.matches["Rest of the world"] == ("Cartagena (source default)",)
    caribbean = tagged_in("es", "Córdoba celebra sus fiestas", defaults=("Caribbean",))
    assert caribbean.regions == ("Caribbean",)  # no place: the default, not Córdoba
    assert "Córdoba" in caribbean.withheld


def test_an_item_naming_no_place_gets_the_source_default() -> None:
    item = tagged_in("en", "New rules for workers", defaults=("Caribbean", "Nowhere"))
    assert item.regions == ("Caribbean",)
    assert item.matches["Caribbean"] == ("(source default)",)
    assert tagged_in("en", "Floods in Haiti", defaults=("Central America",)).regions == (
        "Caribbean",
    )


def test_dominican_republic_is_still_not_dominica_with_data() -> None:
    assert tagged("Storm in the Dominican Republic").matches["Caribbean"] == ("Dominican Republic",)


@pytest.mark.parametrize(
    "title",
    [
        "Hong Kong Protesters Return to Streets",
        "Carlos Ghosn, Fugitive Former Nissan Chief, Returns to Beirut",
        "The Dump Gave It Back",
    ],
)
def test_return_needs_migration_context(title: str) -> None:
    summary = "Workers at the landfill returned it days later." if "Dump" in title else ""
    item = tagged(title, summary)
    assert "Return and reintegration" not in item.topics, item.matches


@pytest.mark.parametrize(
    "text",
    [
        "The return of migrants from Mexico",
        "Returnees receive support",
        "Returned migrants open businesses",
        "A voluntary return programme",
        "Deportees arrive in Tegucigalpa",
    ],
)
def test_return_counts_for_migrants(text: str) -> None:
    assert "Return and reintegration" in tagged(text).topics


def test_an_everyday_word_far_from_migration_is_withheld_with_why() -> None:
    item = tagged(
        "Throw a Dish. Don't Eat Lobster.",
        "How people ring in the new year, and of course what they eat.",
    )
    assert "Training and capacity building" not in item.topics
    assert (
        "within 8 words of a migration word (articles and prepositions not counted)"
        in (item.withheld["course"])
    )


def test_left_behind_by_migrant_husbands_is_labour_migration() -> None:
    item = tagged("Left Behind by Migrant Husbands, Women Break the Rules and Go to Work")
    assert "Labour migration" in item.topics


@pytest.mark.parametrize(
    ("language", "text", "topic"),
    [
        ("es", "Capacitan a funcionarios en trata de personas", "Smuggling and trafficking"),
        ("es", "Las remesas crecen", "Diaspora"),
        ("es", "Niños migrantes no acompañados", "Children and youth"),
        ("fr", "La traite des êtres humains en hausse", "Smuggling and trafficking"),
        ("fr", "Des réfugiés arrivent", "Emergencies and displacement"),
        ("fr", "Atelier de formation pour les agents de l'OIM", "Training and capacity building"),
    ],
)
def test_topics_in_spanish_and_french(language: str, text: str, topic: str) -> None:
    assert topic in tagged_in(language, text).topics


def test_topic_terms_count_only_in_their_language() -> None:
    assert "Diaspora" in tagged_in(None, "Las remesas crecen").topics  # unknown: all languages
    assert "Diaspora" not in tagged_in("en", "Las remesas crecen").topics
    assert "Smuggling and trafficking" not in tagged_in("es", "Se trata de un acuerdo").topics


def test_terms_per_language_in_a_replacement_taxonomy(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(
        "regions:\n  Islands:\n    terms: [Jamaica]\n"
        "context:\n  window: 3\n  terms: {en: [migrants], es: [migrantes]}\n"
        "topics:\n  Boats:\n    terms: {en: [boat], es: [barco]}\n"
        "    in_context: {en: [ship], fr: [navire]}\n",
        encoding="utf-8",
    )
    custom = load_taxonomy(path)

    def item(lang, text):
        return tag(Item(id="1", title=text, date=date(2026, 1, 1), language=lang), custom)

    assert item("es", "Un barco").topics == ("Boats",)
    assert item("en", "Un barco").topics == ()
    assert item("en", "A ship with migrants").topics == ("Boats",)
    assert item("en", "A ship far far away from all the migrants").topics == ()
    assert item("en", "Japan").regions == ()  # no rest region: the rest of the world is nobody's


def test_the_window_does_not_count_the_languages_function_words(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(
        "regions:\n  Islands:\n    terms: [Jamaica]\n"
        "context:\n  window: 2\n  terms: [migrants]\n"
        "  function_words: {en: [of, the], es: [de, los]}\n"
        "topics:\n  Boats:\n    in_context: [ship, barco]\n",
        encoding="utf-8",
    )
    custom = load_taxonomy(path)

    def topics(language: str | None, text: str) -> tuple[str, ...]:
        item = Item(id="1", title=text, date=date(2026, 1, 1), language=language)
        return tag(item, custom).topics

    assert topics("en", "A ship of the migrants") == ("Boats",)
    assert topics("es", "Un barco de los migrants") == ("Boats",)
    assert topics("es", "A ship of the migrants") == ()  # "of the" are words in Spanish
    assert topics(None, "A ship of the migrants") == ("Boats",)  # unknown: every language's
    assert topics("en", "A ship of the old grey migrants") == ()
    assert (
        "within 2 words of a migration word (articles and prepositions not counted)"
        in (
            tag(
                Item(
                    id="1",
                    title="A ship of the old grey migrants",
                    date=date(2026, 1, 1),
                    language="en",
                ),
                custom,
            ).withheld["ship"]
        )
    )


def test_taxonomy_errors_name_file_line_and_field() -> None:
    with pytest.raises(TaxonomyError, match=r"t\.yaml:5: 'B.terms': unknown language 'de'"):
        parse_taxonomy(
            "regions:\n  A: {terms: [x]}\ntopics:\n  B:\n    terms: {de: [x]}\n", "t.yaml"
        )
    with pytest.raises(
        TaxonomyError, match=r"t\.yaml:4: places: Foo: unknown ISO country code 'XX'"
    ):
        parse_taxonomy("regions:\n  A: {terms: [x]}\nplaces:\n  Foo: [XX]\n", "t.yaml")
    with pytest.raises(TaxonomyError, match=r"context.window: expected a positive whole number"):
        parse_taxonomy("regions:\n  A: {terms: [x]}\ncontext:\n  window: many\n", "t.yaml")
    with pytest.raises(TaxonomyError, match=r"t\.yaml:4: 'context.function_words': unknown"):
        parse_taxonomy(
            "regions:\n  A: {terms: [x]}\ncontext:\n  function_words: {de: [der]}\n", "t.yaml"
        )


def test_find_keeps_working_for_the_benchmark_generator() -> None:
    found = find_tags(TAXONOMY, "Returnees in Honduras", None, ())
    assert found.regions == {"Central America": ["Honduras"]}
    assert found.topics == {"Return and reintegration": ["Returnees"]}
    assert "Honduras" in TAXONOMY.region_terms["Central America"]
    assert "Russia" in TAXONOMY.region_terms["Rest of the world"]
    assert "return" not in TAXONOMY.topic_terms["Return and reintegration"]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "Queen Elizabeth visits the troops"),
        ("en", "Nancy Pelosi and Senator Warren speak"),
        ("fr", "Le Nord sous la neige"),
        ("fr", "Tempête dans l'Ouest"),
        ("es", "Las Cortes aprueban la ley"),
        ("es", "Habrá lluvias el fin de semana"),
        ("es", "Cayó la bolsa"),
        ("es", "Cerró el mercado"),
        ("es", "El partido Morena gana"),
    ],
)
def test_words_and_people_that_only_look_like_places(language: str, text: str) -> None:
    assert tagged_in(language, text).regions == (), tagged_in(language, text).matches


def test_latin_america_names_all_its_regions() -> None:
    assert tagged_in("es", "Inflación en América Latina").regions == (
        "Central America",
        "North America",
        "Caribbean",
        "South America",
    )
