"""Date lines in English, Spanish and French: `13 October, 2020`, `November 24, 2026`,
`24 de noviembre de 2026`, `martes, 24 de noviembre de 2026`, `24 novembre 2026`, `2026-11-24`.

The shapes are each language's own long, medium and full date formats, and the month and
weekday names are its names, both from CLDR through Babel (`get_date_format`,
`get_month_names`): adding a language is adding its code to `LOCALES`. Babel's own
`parse_date` reads only numeric dates, so its patterns are compiled here into strict regular
expressions: a line is a date only when it is nothing but a date. Case and accents are
ignored (`Fevrier` = `février`), abbreviations may end in a dot or not (`nov.`, `sept`), a day
may be written as an ordinal (`1er`, `1.º`). A weekday is read but not checked against the date.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from babel.dates import get_date_format, get_day_names, get_month_names, tokenize_pattern

from ..caches import memo

LOCALES = ("en", "es", "fr")
CLDR_FORMATS = ("full", "long", "medium")
# The office's listing has always written these (English) forms; any language may use them.
LISTING_PATTERNS = ("d MMMM, y", "d MMMM y", "d MMM, y")
MAX_LENGTH = 60  # a longer line is text, not a date
_CANDIDATE = re.compile(r"\d{4}")  # every date shape here has a four-digit year
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
# an ordinal day: 1er (fr), 1.º or 1º (es; folded to "1.o", "1o"), 1°
_DAY = r"(?P<day>\d{1,2})(?:er|\.?o|°)?"


def fold(text: str) -> str:
    """Lower case, no accents, single spaces: how lines and names are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


@dataclass(frozen=True)
class DateShape:
    locale: str
    pattern: str  # the CLDR pattern it was made from, e.g. d 'de' MMMM 'de' y
    regex: re.Pattern[str]
    months: dict[str, int]


def _names(names: dict[int, str]) -> dict[str, int]:
    """Folded names, each also without its final dot (`nov.` and `nov`)."""
    found: dict[str, int] = {}
    for number, name in names.items():
        folded = fold(name)
        found[folded] = number
        found[folded.rstrip(".")] = number
    return found


def _month_names(locale: str) -> dict[str, int]:
    months: dict[str, int] = {}
    for width in ("wide", "abbreviated"):
        for context in ("format", "stand-alone"):
            months |= _names(dict(get_month_names(width, context, locale)))
    return months


def _weekday_names(locale: str) -> list[str]:
    names: set[str] = set()
    for width in ("wide", "abbreviated"):
        names |= set(_names(dict(get_day_names(width, "format", locale))))
    return sorted(names, key=len, reverse=True)


def _alternation(names: list[str]) -> str:
    bare = {n.rstrip(".") for n in names}
    return "|".join(re.escape(n) + r"\.?" for n in sorted(bare, key=len, reverse=True))


def _literal(text: str) -> str:
    """Literal text of a pattern: any run of spaces stands for any spaces, a comma may have
    spaces before it."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    words = [re.escape(w) for w in re.split(r"\s+", folded)]
    return r"\s+".join(words).replace(",", r"\s*,")


def _compile(pattern: str, locale: str, months: dict[str, int]) -> re.Pattern[str]:
    """A strict regular expression for one CLDR date pattern, over folded text."""
    parts: list[str] = []
    chars = ""
    for kind, value in [*tokenize_pattern(pattern), ("end", None)]:
        if kind == "chars":
            chars += value
            continue
        if chars:
            parts.append(_literal(chars))
            chars = ""
        if kind == "end":
            break
        letter, width = value
        if letter == "d":
            parts.append(_DAY)
        elif letter in ("M", "L") and width >= 3:
            parts.append(f"(?P<month>{_alternation(list(months))})")
        elif letter == "y":
            parts.append(r"(?P<year>\d{4})")
        elif letter in ("E", "c"):
            parts.append(f"(?:{_alternation(_weekday_names(locale))})")
        else:  # numeric months, eras, ...: not a shape a listing writes
            raise ValueError(f"unsupported date field {letter * width} in {pattern!r}")
    return re.compile("".join(parts))


@memo(maxsize=1)
def date_shapes() -> tuple[DateShape, ...]:
    """Every locale's date shapes, compiled once per process."""
    shapes: list[DateShape] = []
    for locale in LOCALES:
        months = _month_names(locale)
        patterns = [get_date_format(f, locale).pattern for f in CLDR_FORMATS]
        for pattern in dict.fromkeys([*patterns, *LISTING_PATTERNS]):
            shapes.append(DateShape(locale, pattern, _compile(pattern, locale, months), months))
    return tuple(shapes)


def parse_date_line(line: str) -> date | None:
    """The date a line consists of, or None when it is anything else. Raises ValueError for
    a line shaped like a date that is not one (`31 de febrero de 2026`)."""
    text = line.strip()
    if len(text) > MAX_LENGTH or not _CANDIDATE.search(text):
        return None
    if _ISO.fullmatch(text):
        return date.fromisoformat(text)
    folded = fold(text)
    for shape in date_shapes():
        match = shape.regex.fullmatch(folded)
        if match is None:
            continue
        month = shape.months[match["month"].rstrip(".")]
        return date(int(match["year"]), month, int(match["day"]))
    return None
