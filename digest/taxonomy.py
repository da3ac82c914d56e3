"""Regions and topics, the words that signal them, and `tag()` (pure).

Matching is whole-word and case-insensitive; a space in a term also matches a hyphen; at any
position the longest term wins, so "Dominican Republic" is never read as "Dominica". Short
terms written in capitals (US, EU, RCM, WHO) match only in capitals, so "us" and "who" stay words.

A region may list ISO 3166 `countries:`; their names (from pycountry) become its terms. The
region marked `rest: true` gets every country no other region claims, so a story about Sudan
is tagged `Rest of the world` and never reaches a subscriber who asked for the Caribbean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pycountry

from .caches import register_mapping
from .errors import TaxonomyError
from .models import Item, TaggedItem
from .yamlfile import LineDict, YamlSyntaxError, parse_yaml, where

DEFAULT_TAXONOMY = "taxonomy.yaml"


@dataclass(frozen=True)
class Taxonomy:
    regions: tuple[str, ...]
    topics: tuple[str, ...]
    region_terms: dict[str, tuple[str, ...]] = field(repr=False)
    topic_terms: dict[str, tuple[str, ...]] = field(repr=False)
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matcher", _Matcher(self.region_terms, self.topic_terms))

    def find(self, text: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Regions and topics named in `text`, each with the words that named it."""
        return self._matcher.find(text)  # type: ignore[attr-defined]


def _normalise(term: str) -> str:
    return re.sub(r"[\s\-]+", " ", term.strip()).casefold()


def _is_acronym(term: str) -> bool:
    """Short capitals (US, EU, WHO, RCM) are matched as written: "us" and "who" are words."""
    letters = [c for c in term if c.isalpha()]
    return 2 <= len(letters) <= 3 and all(c.isupper() for c in letters)


def _pattern(terms: list[str], flags: int) -> re.Pattern[str] | None:
    if not terms:
        return None
    ordered = sorted(set(terms), key=lambda t: (-len(t), t))
    parts = [r"[\s\-]+".join(re.escape(word) for word in re.split(r"[\s\-]+", t)) for t in ordered]
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", flags)


class _Matcher:
    """Two compiled alternations (case-insensitive words, case-sensitive acronyms)."""

    def __init__(self, regions: dict[str, tuple[str, ...]], topics: dict[str, tuple[str, ...]]):
        self.owners: dict[str, list[tuple[str, str]]] = {}
        words, acronyms = [], []
        for kind, table in (("region", regions), ("topic", topics)):
            for tag, terms in table.items():
                for term in terms:
                    key = term if _is_acronym(term) else _normalise(term)
                    self.owners.setdefault(key, []).append((kind, tag))
                    (acronyms if _is_acronym(term) else words).append(term)
        self.patterns = [(p, False) for p in [_pattern(words, re.IGNORECASE)] if p is not None] + [
            (p, True) for p in [_pattern(acronyms, 0)] if p is not None
        ]

    def find(self, text: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        found: dict[str, dict[str, list[str]]] = {"region": {}, "topic": {}}
        for pattern, exact in self.patterns:
            for match in pattern.finditer(text):
                word = match.group(0)
                key = re.sub(r"[\s\-]+", " ", word) if exact else _normalise(word)
                for kind, tag in self.owners.get(key, ()):
                    words = found[kind].setdefault(tag, [])
                    if not any(w.casefold() == word.casefold() for w in words):
                        words.append(word)
        return found["region"], found["topic"]


def tag(item: Item, taxonomy: Taxonomy) -> TaggedItem:
    """Tag an item from its title and summary; tags the source gave are kept (pure)."""
    regions_found, topics_found = taxonomy.find(f"{item.title}\n{item.summary}")
    matches: dict[str, tuple[str, ...]] = {}
    for tag_name, words in (*regions_found.items(), *topics_found.items()):
        matches[tag_name] = tuple(words)
    known = {*taxonomy.regions, *taxonomy.topics}
    given = {*item.regions, *item.topics, *item.categories} & known
    for name in sorted(given):
        matches.setdefault(name, ("(given by source)",))
    regions = [r for r in taxonomy.regions if r in regions_found or r in given]
    topics = [t for t in taxonomy.topics if t in topics_found or t in given]
    return TaggedItem(item=item, regions=tuple(regions), topics=tuple(topics), matches=matches)


def _country_names(country: object) -> list[str]:
    names = []
    for attr in ("name", "common_name", "official_name"):
        value = getattr(country, attr, None)
        if value:
            names.append(value)
            short = re.split(r",| \(", value)[0].strip()
            if short != value:
                names.append(short)
    return names


def _terms(data: object, path: str, line: int, what: str) -> tuple[str, ...]:
    if data is None:
        return ()
    if not isinstance(data, list) or not all(isinstance(t, str) and t.strip() for t in data):
        raise TaxonomyError(
            f"{where(path, line)}: '{what}': expected a list of words or phrases",
            hint="write each term as a list entry: - Honduras",
        )
    return tuple(t.strip() for t in data)


def parse_taxonomy(text: str, path: str = "<taxonomy>") -> Taxonomy:
    try:
        data = parse_yaml(text)
    except YamlSyntaxError as exc:
        raise TaxonomyError(f"{where(path, exc.line)}: not valid YAML: {exc.problem}") from exc
    if not isinstance(data, LineDict) or not isinstance(data.get("regions"), dict):
        raise TaxonomyError(
            f"{path}: expected 'regions:' and 'topics:' mappings",
            hint="see digest/data/taxonomy.yaml for the shape",
        )
    unknown = set(data) - {"regions", "topics"}
    if unknown:
        key = sorted(unknown)[0]
        raise TaxonomyError(f"{where(path, data.line_of(key))}: unknown key '{key}'")
    region_terms: dict[str, tuple[str, ...]] = {}
    claimed: set[str] = set()
    rest: str | None = None
    regions_data: LineDict = data["regions"]
    for name, spec in regions_data.items():
        line = regions_data.line_of(name)
        if not isinstance(spec, dict):
            raise TaxonomyError(f"{where(path, line)}: region '{name}': expected a mapping")
        extra = set(spec) - {"terms", "countries", "rest"}
        if extra:
            raise TaxonomyError(
                f"{where(path, line)}: region '{name}': unknown key '{sorted(extra)[0]}'"
            )
        terms = [str(name), *_terms(spec.get("terms"), path, line, f"{name}.terms")]
        for code in _terms(spec.get("countries"), path, line, f"{name}.countries"):
            country = pycountry.countries.get(alpha_2=code.upper())
            if country is None:
                raise TaxonomyError(
                    f"{where(path, line)}: region '{name}': unknown ISO country code {code!r}"
                )
            claimed.add(country.alpha_2)
            terms.extend(_country_names(country))
        if spec.get("rest"):
            rest = str(name)
        region_terms[str(name)] = tuple(dict.fromkeys(terms))
    if rest is not None:
        taken = {_normalise(t) for r, ts in region_terms.items() if r != rest for t in ts}
        extra_terms = [
            name
            for country in pycountry.countries
            if country.alpha_2 not in claimed
            for name in _country_names(country)
            if _normalise(name) not in taken
        ]
        region_terms[rest] = tuple(dict.fromkeys([*region_terms[rest], *extra_terms]))

    topics_data = data.get("topics") or LineDict()
    if not isinstance(topics_data, dict):
        raise TaxonomyError(f"{where(path, data.line_of('topics'))}: 'topics': expected a mapping")
    topic_terms: dict[str, tuple[str, ...]] = {}
    for name, spec in topics_data.items():
        line = topics_data.line_of(name)
        if not isinstance(spec, dict):
            raise TaxonomyError(f"{where(path, line)}: topic '{name}': expected a mapping")
        topic_terms[str(name)] = (
            str(name),
            *_terms(spec.get("terms"), path, line, f"{name}.terms"),
        )
    return Taxonomy(
        regions=tuple(region_terms),
        topics=tuple(topic_terms),
        region_terms=region_terms,
        topic_terms=topic_terms,
        source=path,
    )


_cache: dict[str, Taxonomy] = {}
register_mapping("digest.taxonomy.loaded", _cache)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The taxonomy from `path`, or the default one shipped inside the package."""
    if path is None:
        text = (
            resources.files("digest").joinpath("data").joinpath(DEFAULT_TAXONOMY).read_text("utf-8")
        )
        label = f"(built-in) digest/data/{DEFAULT_TAXONOMY}"
    else:
        text, label = Path(path).read_text(encoding="utf-8"), str(path)
    key = f"{label}\0{hash(text)}"
    if key not in _cache:
        _cache[key] = parse_taxonomy(text, label)
    return _cache[key]
