"""`tag()`: an item's regions and topics from its words (pure).

Places: a name that fits one region tags it. A name that fits several (Cartagena: Colombia or
Spain; Georgia: the country or the US state) is resolved by the item itself: a country of its
candidates named elsewhere in the item wins ("Cartagena, Colombia"; "Murcia ... Cartagena"),
else a region of its candidates named elsewhere ("Granada, in Central America"), else the
source's default regions among its candidates; else no tag, and the item records why.

Topics: a term marked `in_context` (return, training, work) counts only when a migration word
(the taxonomy's `context:` terms, or any topic term that needs no context) stands within
`context.window` words of it, not counting the item language's `context.function_words`
(articles, prepositions: Spanish and French need more of them than English for the same
sentence); otherwise the item records that it was withheld.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pycountry

from ..models import Item, TaggedItem
from .lexicon import Hit
from .model import Taxonomy

SOURCE_DEFAULT = "(source default)"
GIVEN = "(given by source)"


@dataclass
class Found:
    regions: dict[str, list[str]] = field(default_factory=dict)
    topics: dict[str, list[str]] = field(default_factory=dict)
    withheld: dict[str, str] = field(default_factory=dict)

    def add(self, table: dict[str, list[str]], name: str, word: str) -> None:
        words = table.setdefault(name, [])
        if not any(w.casefold() == word.casefold() for w in words):
            words.append(word)


def find_tags(
    taxonomy: Taxonomy, text: str, language: str | None, default_regions: tuple[str, ...]
) -> Found:
    hits, positions = taxonomy.scan(text, language)
    found = Found()
    _places(taxonomy, hits, default_regions, found)
    _topics(taxonomy, hits, positions, found)
    return found


def _places(taxonomy: Taxonomy, hits: list[Hit], defaults: tuple[str, ...], found: Found) -> None:
    named_countries: set[str] = set()
    named_regions: set[str] = set()
    ambiguous: list[tuple[str, set[str], set[str]]] = []
    for hit in hits:
        entries = [e for e in hit.entries if e.kind == "place"]
        if not entries:
            continue
        # a term of the taxonomy file under several regions names them all (RCM spans two)
        own = [e for e in entries if not e.countries]
        regions = {r for e in own or entries for r in e.regions}
        countries = {c for e in entries for c in e.countries}
        if own or len(regions) == 1:
            for region in sorted(regions):
                found.add(found.regions, region, hit.written)
            named_regions |= regions
            named_countries |= countries
        else:
            ambiguous.append((hit.written, regions, countries))
    for word, regions, countries in ambiguous:
        by_country = {taxonomy.region_of[c] for c in countries & named_countries}
        chosen = by_country or (regions & named_regions)
        label = word
        if not chosen:
            chosen, label = regions & set(defaults), f"{word} {SOURCE_DEFAULT}"
        for region in sorted(chosen):
            found.add(found.regions, region, label)
        if not chosen:
            found.withheld[word] = _why_withheld(regions, countries, taxonomy)


def _why_withheld(regions: set[str], countries: set[str], taxonomy: Taxonomy) -> str:
    places = [f"{_country_name(c)} ({taxonomy.region_of[c]})" for c in sorted(countries)] or sorted(
        regions
    )
    return (
        f"ambiguous place: could be {', '.join(places[:-1])} or {places[-1]}; the item names "
        "no other place in one of them and the source's default regions include none"
    )


def _country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return getattr(country, "common_name", None) or getattr(country, "name", code)


def _topics(taxonomy: Taxonomy, hits: list[Hit], positions: list[int], found: Found) -> None:
    """`positions`: each word's place as the window counts (function words not counted)."""
    anchors = [
        h.start
        for h in hits
        if any(
            e.kind == "context" or (e.kind == "topic" and not e.needs_context) for e in h.entries
        )
    ]
    window = taxonomy.context_window
    unit = " (articles and prepositions not counted)" if taxonomy.function_words else ""
    for hit in hits:
        for entry in hit.entries:
            if entry.kind != "topic":
                continue
            start = positions[hit.start]
            end = max(positions[hit.end], start + 1)
            near = not entry.needs_context or any(
                start - window <= positions[a] < end + window for a in anchors if a != hit.start
            )
            if near:
                found.add(found.topics, entry.name, hit.written)
            elif entry.name not in found.topics:
                found.withheld[hit.written] = (
                    f"'{hit.written}' counts for {entry.name} only within {window} words of a "
                    f"migration word{unit}"
                )
    for topic, words in found.topics.items():
        for word in words:
            reason = found.withheld.get(word, "")
            if topic in reason:
                del found.withheld[word]


def tag(item: Item, taxonomy: Taxonomy, default_regions: tuple[str, ...] = ()) -> TaggedItem:
    """Tag an item from its title and summary (pure). Tags the source gave are kept; an item
    that names no place gets `default_regions` (the source's `regions:` setting)."""
    known = {*taxonomy.regions, *taxonomy.topics}
    defaults = tuple(r for r in default_regions if r in taxonomy.regions)
    found = find_tags(taxonomy, f"{item.title}\n{item.summary}", item.language, defaults)
    matches: dict[str, tuple[str, ...]] = {
        name: tuple(words) for name, words in (*found.regions.items(), *found.topics.items())
    }
    given = {*item.regions, *item.topics, *item.categories} & known
    for name in sorted(given):
        matches.setdefault(name, (GIVEN,))
    regions = [r for r in taxonomy.regions if r in found.regions or r in given]
    if not regions and defaults:
        regions = list(defaults)
        for region in defaults:
            matches[region] = (SOURCE_DEFAULT,)
    topics = [t for t in taxonomy.topics if t in found.topics or t in given]
    return TaggedItem(
        item=item,
        regions=tuple(regions),
        topics=tuple(topics),
        matches=matches,
        withheld=found.withheld,
    )
