"""Reading a taxonomy file: regions with countries and terms, topics with terms per language,
the migration context some topic words need, and the place-name additions and exclusions."""

from __future__ import annotations

import re

import pycountry

from ..errors import TaxonomyError
from ..yamlfile import LineDict, YamlSyntaxError, parse_yaml, where
from .lexicon import ALL, Entry, Lexicon, is_acronym
from .model import DEFAULT_CONTEXT_WINDOW, Taxonomy
from .places import place_entries
from .text import fold

LANGUAGES = ("en", "es", "fr")
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
TOP_KEYS = {"regions", "topics", "context", "places", "not_places", "demonyms"}


class _Reader:
    """Helpers that read one kind of value and name the file and line when it is wrong."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, line: int, message: str, hint: str | None = None) -> TaxonomyError:
        return TaxonomyError(f"{where(self.path, line)}: {message}", hint=hint)

    def terms(self, data: object, line: int, what: str) -> tuple[str, ...]:
        if data is None:
            return ()
        if not isinstance(data, list) or not all(isinstance(t, str) and t.strip() for t in data):
            raise self.fail(
                line,
                f"'{what}': expected a list of words or phrases",
                hint="write each term as a list entry: - Honduras",
            )
        return tuple(t.strip() for t in data)

    def by_language(self, data: object, line: int, what: str) -> dict[str, tuple[str, ...]]:
        """`[a, b]` (every language) or `{en: [...], es: [...], fr: [...]}`."""
        if not isinstance(data, dict):
            return {ALL: self.terms(data, line, what)}
        result = {}
        for language, terms in data.items():
            if language not in LANGUAGES:
                raise self.fail(
                    _line(data, language, line),
                    f"'{what}': unknown language '{language}'",
                    hint=f"languages: {', '.join(LANGUAGES)}",
                )
            result[str(language)] = self.terms(terms, _line(data, language, line), what)
        return result

    def names(self, data: object, line: int, what: str) -> dict[str, str]:
        """`{es: Centroamérica, fr: Amérique centrale}`: a region's or topic's name as readers
        of each language see it in their digest and on the web."""
        spec = self.mapping(data, line, what, None)
        result = {}
        for language, name in spec.items():
            at = _line(spec, language, line)
            if not isinstance(language, str) or not _LANGUAGE_CODE.match(language):
                raise self.fail(at, f"{what}: expected a language code (es), got {language!r}")
            if not isinstance(name, str) or not name.strip():
                raise self.fail(at, f"{what}.{language}: expected the name in that language")
            result[language] = name.strip()
        return result

    def country(self, code: object, line: int, what: str) -> str:
        country = pycountry.countries.get(alpha_2=str(code).upper())
        if country is None:
            raise self.fail(line, f"{what}: unknown ISO country code {code!r}")
        return country.alpha_2

    def mapping(self, data: object, line: int, what: str, keys: set[str] | None) -> LineDict:
        """A mapping (None: empty); with `keys`, only those keys."""
        if data is None:
            return LineDict()
        if not isinstance(data, dict):
            raise self.fail(line, f"{what}: expected a mapping")
        extra = set(data) - keys if keys is not None else set()
        if extra:
            key = sorted(extra)[0]
            raise self.fail(_line(data, key, line), f"{what}: unknown key '{key}'")
        return data  # type: ignore[return-value]


def _line(data: object, key: object, default: int) -> int:
    return data.line_of(key) if isinstance(data, LineDict) else default


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
    unknown = set(data) - TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise TaxonomyError(f"{where(path, data.line_of(key))}: unknown key '{key}'")
    read = _Reader(path)
    lexicon = Lexicon()
    shown: dict[str, dict[str, str]] = {}  # language -> English name -> its name there
    region_of, region_terms = _read_regions(read, data["regions"], lexicon, shown)
    country_names = _add_places(read, data, lexicon, region_of, region_terms)
    for region, names in country_names.items():
        region_terms[region] = tuple(dict.fromkeys([*region_terms[region], *names]))
    topic_terms = _read_topics(read, data.get("topics"), data.line_of("topics"), lexicon, shown)
    window, function_words = _read_context(
        read, data.get("context"), data.line_of("context"), lexicon
    )
    return Taxonomy(
        regions=tuple(region_terms),
        topics=tuple(topic_terms),
        region_terms=region_terms,
        topic_terms=topic_terms,
        source=path,
        lexicon=lexicon,
        context_window=window,
        function_words=function_words,
        region_of=region_of,
        names=shown,
    )


def _add_names(names: dict[str, dict[str, str]], name: str, translated: dict[str, str]) -> None:
    for language, text in translated.items():
        names.setdefault(language, {})[name] = text


def _read_regions(
    read: _Reader, regions: LineDict, lexicon: Lexicon, names: dict[str, dict[str, str]]
) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """The regions' own terms go straight into the lexicon; returns code -> region."""
    region_of: dict[str, str] = {}
    region_terms: dict[str, tuple[str, ...]] = {}
    rest: str | None = None
    for name, spec in regions.items():
        line = regions.line_of(name)
        spec = read.mapping(spec, line, f"region '{name}'", {"terms", "countries", "rest", "names"})
        terms = [str(name), *read.terms(spec.get("terms"), line, f"{name}.terms")]
        _add_names(names, str(name), read.names(spec.get("names"), line, f"{name}.names"))
        for code in read.terms(spec.get("countries"), line, f"{name}.countries"):
            region_of[read.country(code, line, f"region '{name}'")] = str(name)
        if spec.get("rest"):
            rest = str(name)
        region_terms[str(name)] = tuple(dict.fromkeys(terms))
    if rest is not None:
        for country in pycountry.countries:
            region_of.setdefault(country.alpha_2, rest)
    return region_of, region_terms


def _add_places(
    read: _Reader,
    data: LineDict,
    lexicon: Lexicon,
    region_of: dict[str, str],
    region_terms: dict[str, tuple[str, ...]],
) -> dict[str, list[str]]:
    """Place data first, then the file's own region terms, which replace data on the same
    words (the file is the office's word). Returns each region's country names."""
    line = data.line_of("places")
    extra_places = {}
    for name, codes in read.mapping(data.get("places"), line, "places", None).items():
        codes_line = data["places"].line_of(name)
        extra_places[str(name)] = tuple(
            read.country(c, codes_line, f"places: {name}")
            for c in read.terms(codes, codes_line, f"places.{name}")
        )
    not_places = {
        fold(t)
        for t in read.terms(data.get("not_places"), data.line_of("not_places"), "not_places")
    }
    demonyms = _read_demonyms(read, data.get("demonyms"), data.line_of("demonyms"))
    country_names: dict[str, list[str]] = {}
    for key, entry, is_country in place_entries(region_of, not_places, extra_places, demonyms):
        lexicon.add(entry, key)
        if is_country:
            country_names.setdefault(entry.regions[0], []).append(entry.term)
    for region, terms in region_terms.items():
        for term in terms:
            case = "exact" if is_acronym(term) else "capital" if term[:1].isupper() else "any"
            key = fold(term)
            lexicon.replace(key, lambda e: e.kind != "place" or e.countries == ())
            lexicon.add(Entry("place", "", term, ALL, case, regions=(region,)), key)
    return country_names


def _read_demonyms(read: _Reader, data: object, line: int) -> dict[str, dict[str, tuple]]:
    result: dict[str, dict[str, tuple]] = {}
    languages = read.mapping(data, line, "demonyms", set(LANGUAGES))
    for language, by_code in languages.items():
        lang_line = languages.line_of(language)
        table = read.mapping(by_code, lang_line, f"demonyms.{language}", None)
        result[str(language)] = {
            read.country(code, table.line_of(code), f"demonyms.{language}"): read.terms(
                words, table.line_of(code), f"demonyms.{language}.{code}"
            )
            for code, words in table.items()
        }
    return result


def _read_topics(
    read: _Reader, topics: object, line: int, lexicon: Lexicon, names: dict[str, dict[str, str]]
) -> dict:
    topics = read.mapping(
        topics, line, "topics", set(topics or ()) if isinstance(topics, dict) else set()
    )
    topic_terms: dict[str, tuple[str, ...]] = {}
    for name, spec in topics.items():
        at = topics.line_of(name)
        spec = read.mapping(spec, at, f"topic '{name}'", {"terms", "in_context", "names"})
        _add_names(names, str(name), read.names(spec.get("names"), at, f"{name}.names"))
        plain = read.by_language(spec.get("terms"), at, f"{name}.terms")
        needing = read.by_language(spec.get("in_context"), at, f"{name}.in_context")
        needing_keys = {fold(t) for terms in needing.values() for t in terms}
        if fold(str(name)) not in needing_keys:
            plain.setdefault(ALL, ())
            plain[ALL] = (str(name), *plain[ALL])
        for table, needs in ((plain, False), (needing, True)):
            for language, terms in table.items():
                for term in terms:
                    case = "exact" if is_acronym(term) else "any"
                    lexicon.add(Entry("topic", str(name), term, language, case, needs))
        topic_terms[str(name)] = tuple(dict.fromkeys(t for ts in plain.values() for t in ts))
    return topic_terms


def _read_context(
    read: _Reader, data: object, line: int, lexicon: Lexicon
) -> tuple[int, dict[str, frozenset[str]]]:
    """The window, the context terms and the everyday phrases (into the lexicon) and the
    words the window skips."""
    keys = {"window", "terms", "function_words", "everyday_phrases"}
    spec = read.mapping(data, line, "context", keys)
    window = spec.get("window", DEFAULT_CONTEXT_WINDOW)
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise read.fail(
            spec.line_of("window") if spec else line,
            "context.window: expected a positive whole number of words",
        )
    for language, terms in read.by_language(spec.get("terms"), line, "context.terms").items():
        for term in terms:
            case = "exact" if is_acronym(term) else "any"
            lexicon.add(Entry("context", "", term, language, case))
    everyday = read.by_language(spec.get("everyday_phrases"), line, "context.everyday_phrases")
    for language, phrases in everyday.items():
        for phrase in phrases:
            lexicon.add(Entry("everyday", "", phrase, language))
    skipped = read.by_language(spec.get("function_words"), line, "context.function_words")
    function_words = {lang: frozenset(fold(w) for w in words) for lang, words in skipped.items()}
    if function_words and ALL not in function_words:  # an item of unknown language
        function_words[ALL] = frozenset().union(*function_words.values())
    return window, function_words
