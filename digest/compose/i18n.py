"""Translations: the catalogs of template and page strings, and each language's wording of
names, dates and numbers.

The catalogs are gettext .po files kept in the repository (digest/locale/<code>/LC_MESSAGES/
digest.po, made with Babel's `pybabel extract/init/update`, see babel.cfg and the README's
"Languages"), compiled here when first needed: no .mo files are kept or installed. Staff who
override the templates (`templates:`) may put catalogs of their own strings beside them, in
`<templates>/locale/<code>/LC_MESSAGES/digest.po`; theirs come first, then the project's, and a
string neither translates is shown in English.

A catalog that cannot be read (a syntax error, a translation whose placeholders do not match
its English) is a `TemplateError` naming the file and line: nothing is sent.

Region and topic names are translated in the taxonomy file (`names:` under each), not here:
they belong to the taxonomy, which staff may replace with their own regions.
"""

from __future__ import annotations

import gettext
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from babel.dates import format_date, format_interval
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.numbers import format_decimal
from babel.support import Translations

from ..caches import memo
from ..errors import TemplateError
from ..languages import DOMAIN, SOURCE_LANGUAGE, reader_languages
from ..selection import OTHER_TOPICS, REGION_WIDE

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
STAFF_LOCALE = "locale"  # the folder, beside staff's own templates, of their catalogs


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark for extraction only")
    """Marks a string for the catalogs; it is translated where it is shown."""
    return message


def N_plural(singular: str, plural: str) -> tuple[str, str]:  # noqa: N802
    """Marks a singular and plural pair for the catalogs (shown with `ngettext`)."""
    return singular, plural


# Section headings that are not a region or topic (`selection`), and the footer's words for
# "every region" and "every topic".
SECTION_WORDS = {REGION_WIDE: N_("Across the region"), OTHER_TOPICS: N_("Other news")}
ALL_REGIONS, ALL_TOPICS = N_("all regions"), N_("all topics")


# -- reading the catalogs ------------------------------------------------------------------------
def catalog_files(language: str, templates: Path | None = None) -> list[Path]:
    """The catalogs of `language` that exist, the staff's (beside `templates`) first."""
    relative = Path(language, "LC_MESSAGES", f"{DOMAIN}.po")
    folders = ([Path(templates) / STAFF_LOCALE] if templates is not None else []) + [LOCALE_DIR]
    return [folder / relative for folder in folders if (folder / relative).is_file()]


# A keyword line (msgid "..."), or a string continuing one ("..."): the string must be whole.
_LINE = re.compile(r'^(?:(?:msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?)\s+)?(".*")$')
_STRING = re.compile(r'^"(?:[^"\\]|\\.)*"$')


def _check_strings(path: Path, text: str) -> None:
    """Babel's reader takes `msgid "Bye` for "By": every string must open and close."""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        found = _LINE.match(line)
        if found is None or not _STRING.match(found.group(1)):
            raise _broken(path, number, f"not a keyword and a whole quoted string: {line!r}")


def _broken(path: Path, line: int, problem: str) -> TemplateError:
    return TemplateError(
        f"{path}:{line}: translation catalog: {problem}",
        hint="fix the .po file (`pybabel compile --check` shows the same); nothing was sent",
    )


def read_catalog(path: Path) -> Catalog:
    """A .po file, checked: its syntax, and each translation's placeholders against its
    English. Raises TemplateError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _broken(path, text_line(path.read_bytes(), exc.start), "not UTF-8") from exc
    _check_strings(path, text)
    try:
        catalog = read_po(io.StringIO(text), abort_invalid=True)
    except PoFileError as exc:
        raise _broken(path, exc.lineno + 1, str(exc).split(" on ")[0]) from exc
    for message, errors in catalog.check():
        shown = message.id if isinstance(message.id, str) else message.id[0]
        raise _broken(path, message.lineno or 0, f"{shown!r}: {errors[0]}")
    return catalog


def text_line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


@memo(maxsize=32)
def _compiled(path: str, stamp: tuple[int, int]) -> tuple[Translations, frozenset[str]]:
    """A catalog compiled in memory, and the English strings it translates (remembered until
    the file changes: `stamp`)."""
    catalog = read_catalog(Path(path))
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)  # a fuzzy translation shows the English
    buffer.seek(0)
    translated = frozenset(
        m.id if isinstance(m.id, str) else m.id[0]
        for m in catalog
        if m.id and not m.fuzzy and all(m.string if isinstance(m.string, tuple) else (m.string,))
    )
    return Translations(buffer, domain=DOMAIN), translated


def _stamped(path: Path) -> tuple[Translations, frozenset[str]]:
    info = path.stat()
    return _compiled(str(path), (info.st_mtime_ns, info.st_size))


def translations(language: str, templates: Path | None = None) -> gettext.NullTranslations:
    """`language`'s strings: the staff's catalog, then the project's, then English."""
    chain: gettext.NullTranslations | None = None
    for path in reversed(catalog_files(language, templates)):
        compiled, _ = _stamped(path)
        layer = Translations(domain=DOMAIN)  # a fresh object per chain: fallbacks are set on it
        layer.merge(compiled)
        if chain is not None:
            layer.add_fallback(chain)
        chain = layer
    return chain or gettext.NullTranslations()


# -- dates and numbers ---------------------------------------------------------------------------
@memo(maxsize=4096)
def format_period(start: date, end: date, language: str = SOURCE_LANGUAGE) -> str:
    """The digest's period. English as the office writes it: '16-22 Nov 2026', '28 Oct-3 Nov
    2026', '28 Dec 2025-3 Jan 2026', '28 Nov 2026'; other languages as CLDR does (Babel):
    '16–22 nov 2026', '28 oct. – 3 nov. 2026'."""
    if start > end:
        start, end = end, start
    if language != SOURCE_LANGUAGE:
        if start == end:
            return format_date(end, "d MMM y", locale=language)
        return format_interval(start, end, "yMMMd", locale=language)
    if start == end:
        return f"{end.day} {end:%b %Y}"
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}-{end.day} {end:%b %Y}"
    if start.year == end.year:
        return f"{start.day} {start:%b}-{end.day} {end:%b %Y}"
    return f"{start.day} {start:%b %Y}-{end.day} {end:%b %Y}"


@memo(maxsize=8192)
def long_date(value: date, language: str = SOURCE_LANGUAGE) -> str:
    """'24 November 2026', '24 de noviembre de 2026', '24 novembre 2026'."""
    if language == SOURCE_LANGUAGE:
        return f"{value.day} {value:%B %Y}"
    return format_date(value, "long", locale=language)


@memo(maxsize=4096)
def format_number(value: int, language: str = SOURCE_LANGUAGE) -> str:
    """'1,234' in English, '1234' in Spanish (CLDR groups from five digits), '1 234' in French."""
    return format_decimal(value, locale=language)


# -- one language's wording --------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Localiser:
    """How one language words a digest or a page: its strings, the taxonomy's names in it,
    its dates and numbers."""

    code: str
    strings: gettext.NullTranslations = field(default_factory=gettext.NullTranslations)
    names: Mapping[str, str] = field(default_factory=dict)  # English name -> name here

    def gettext(self, message: str) -> str:
        return self.strings.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self.strings.ngettext(singular, plural, count)

    def name(self, english: str) -> str:
        """A region's, topic's or section's name in this language (else in English)."""
        if english in SECTION_WORDS:
            return self.gettext(SECTION_WORDS[english])
        return self.names.get(english, english)

    def names_list(self, chosen: Iterable[str], every: str) -> str:
        """'Caribe, Salud', or the words for all of them (ALL_REGIONS, ALL_TOPICS)."""
        return _names_list(self, tuple(chosen), every)

    def period(self, start: date, end: date) -> str:
        return format_period(start, end, self.code)

    def long_date(self, value: date) -> str:
        return long_date(value, self.code)

    def number(self, value: int) -> str:
        return format_number(value, self.code)


ENGLISH = Localiser(SOURCE_LANGUAGE)  # the templates' own words, no catalog


@memo(maxsize=4096)
def _names_list(localiser: Localiser, chosen: tuple[str, ...], every: str) -> str:
    return ", ".join(localiser.name(n) for n in chosen) or localiser.gettext(every)


def localisers(
    names: Mapping[str, Mapping[str, str]] | None = None, templates: Path | None = None
) -> dict[str, Localiser]:
    """One `Localiser` per reader language, every catalog read and checked now (a broken one
    raises TemplateError before anything is rendered). `names`: the taxonomy's."""
    names = names or {}
    return {
        code: Localiser(code, translations(code, templates), dict(names.get(code, {})))
        for code in reader_languages()
    }


# What the templates' extraction is told (babel.cfg says the same for `pybabel extract`).
TEMPLATE_EXTRACTION = {"trimmed": "true", "trim_blocks": "true", "lstrip_blocks": "true"}


def template_strings(templates: Path) -> list[tuple[str, str]]:
    """Every translatable string of the templates in `templates` (their .j2 files), with
    where it is: [(msgid, "digest.mjml.j2:37")]."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract
    from jinja2.ext import babel_extract

    found: list[tuple[str, str]] = []
    for path in sorted(Path(templates).glob("*.j2")):
        with path.open("rb") as handle:
            for line, message, _, _ in extract(
                babel_extract, handle, DEFAULT_KEYWORDS, options=TEMPLATE_EXTRACTION
            ):
                msgid = message if isinstance(message, str) else message[0]
                found.append((msgid, f"{path.name}:{line}"))
    return found


def project_strings(language: str) -> list[tuple[str, str]]:
    """The strings of the project's own catalog of `language` (its templates, pages and the
    sentences made in code), with where each is in it."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.is_file():
        path = LOCALE_DIR / f"{DOMAIN}.pot"
    if not path.is_file():
        return []
    return [
        (m.id if isinstance(m.id, str) else m.id[0], f"{path}:{m.lineno}")
        for m in read_catalog(path)
        if m.id
    ]


def missing_translations(
    language: str, strings: Iterable[tuple[str, str]], templates: Path | None = None
) -> list[tuple[str, str]]:
    """The (msgid, where) of `strings` that `language` shows in English: no translation in
    the staff's catalog nor the project's, or only a fuzzy one."""
    translated: set[str] = set()
    for path in catalog_files(language, templates):
        translated |= _stamped(path)[1]
    seen: set[str] = set()
    missing = []
    for msgid, where in strings:
        if msgid and msgid not in translated and msgid not in seen:
            seen.add(msgid)
            missing.append((msgid, where))
    return missing
