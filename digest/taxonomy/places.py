"""The world's place names (digest/data/places.json, built by tools/build_places.py) as lexicon
entries for one taxonomy: each country code goes to the region listing it, or to the region
marked `rest: true`, and a name whose candidates fall in several regions is ambiguous.

A name is ambiguous only among candidates of comparable size: a region whose largest
candidate is ten times smaller than the largest one drops out ("Lima" is Peru, not Ohio).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from importlib import resources

from ..caches import memo
from .lexicon import ALL, Entry
from .text import INFLECT, fold

PLACES_FILE = "places.json"
DOMINANCE = 10
CASE_OF_DEMONYMS = {"en": "capital", "es": "lower", "fr": "any"}


@memo(maxsize=1)
def place_data() -> dict:
    """The shipped place data, read once per process."""
    text = resources.files("digest").joinpath("data", PLACES_FILE).read_text("utf-8")
    return json.loads(text)


def _regions_of(
    candidates: Mapping[str, float], region_of: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(regions, countries) of the candidates that are not dwarfed by the largest."""
    weights: dict[str, float] = {}
    for code, weight in candidates.items():
        region = region_of.get(code)
        if region is not None:
            weights[region] = max(weights.get(region, 0), weight)
    if not weights:
        return (), ()
    top = max(weights.values())
    regions = tuple(sorted(r for r, w in weights.items() if w * DOMINANCE >= top))
    countries = tuple(sorted(c for c in candidates if region_of.get(c) in regions))
    return regions, countries


def place_entries(
    region_of: Mapping[str, str],
    not_places: set[str],
    extra_places: Mapping[str, tuple[str, ...]],
    extra_demonyms: Mapping[str, Mapping[str, tuple[str, ...]]],
) -> Iterator[tuple[str, Entry, bool]]:
    """(key, entry, is_country_name) for every place name and demonym of the data, with the
    taxonomy's additions (`places:`, `demonyms:`) and without its `not_places:`."""
    data = place_data()
    overridden = {fold(name) for name in extra_places}
    for label, kinds, candidates, everyday_in in data["toponyms"]:
        key = fold(label)
        if key in not_places or key in overridden:
            continue
        regions, countries = _regions_of(candidates, region_of)
        if regions:
            entry = Entry(
                "place",
                "",
                label,
                ALL,
                "capital",
                regions=regions,
                countries=countries,
                everyday_in=tuple(everyday_in),
            )
            yield key, entry, "country" in kinds and len(regions) == 1
    for name, codes in extra_places.items():
        regions, countries = _regions_of(dict.fromkeys(codes, 1), region_of)
        if regions:
            yield (
                fold(name),
                Entry("place", "", name, ALL, "capital", regions=regions, countries=countries),
                False,
            )
    yield from _demonym_entries(data["demonyms"], region_of, not_places, extra_demonyms)


def _demonym_entries(
    rows: list, region_of: Mapping[str, str], not_places: set[str], extra
) -> Iterator[tuple[str, Entry, bool]]:
    table: dict[tuple[str, str], dict[str, float]] = {}
    for word, language, candidates in rows:
        table[(word, language)] = dict(candidates)
    for language, by_code in extra.items():
        for code, words in by_code.items():
            for word in words:
                for form in INFLECT[language](word):
                    table.setdefault((form, language), {})[code] = float("inf")
    for (word, language), candidates in table.items():
        key = fold(word)
        if key in not_places:
            continue
        regions, countries = _regions_of(candidates, region_of)
        if regions:
            case = CASE_OF_DEMONYMS.get(language, "any")
            entry = Entry("place", "", word, language, case, regions=regions, countries=countries)
            yield key, entry, False
