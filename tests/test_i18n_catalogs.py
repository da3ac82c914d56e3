"""The translation catalogs kept in the repository: up to date with the code and templates,
complete in every language, and checked as they are read; dates and numbers per language."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from digest.compose.i18n import (
    LOCALE_DIR,
    format_number,
    format_period,
    localisers,
    long_date,
    missing_translations,
    read_catalog,
)
from digest.errors import TaxonomyError, TemplateError
from digest.languages import reader_languages
from digest.taxonomy import load_taxonomy, parse_taxonomy

ROOT = Path(__file__).resolve().parent.parent


def _ids(path: Path) -> set[str]:
    with path.open("rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


def test_the_template_catalog_is_what_extraction_finds_now(tmp_path: Path) -> None:
    """A string added to the code or a template without `pybabel extract` (README,
    "Languages") fails here, before a reader sees it in English."""
    fresh = tmp_path / "digest.pot"
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-k", "N_",
         "-k", "N_plural:1,2", "-o", str(fresh), str(ROOT)]
    )  # fmt: skip
    assert _ids(fresh) == _ids(LOCALE_DIR / "digest.pot")


@pytest.mark.parametrize("language", ["es", "fr"])
def test_every_string_is_translated(language: str) -> None:
    strings = [(m, "digest.pot") for m in sorted(_ids(LOCALE_DIR / "digest.pot"))]
    assert missing_translations(language, strings) == []


def test_the_reader_languages_are_those_with_a_catalog() -> None:
    assert reader_languages() == ("en", "es", "fr")


def _po(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "digest.po"
    header = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
    path.write_text(header + body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "line", "said"),
    [
        ('msgid "Hello,"\nmsgstr "Hola:\n', 6, "whole quoted string"),
        ('msgid "Hello,"\nmsgtsr "Hola:"\n', 6, "not a keyword"),
        (
            '#, python-format\nmsgid "Hello %(name)s,"\nmsgstr "Hola, %(nombre)s:"\n',
            6,
            "unknown named placeholder",
        ),
    ],
)
def test_a_broken_catalog_names_its_file_and_line(
    tmp_path: Path, body: str, line: int, said: str
) -> None:
    path = _po(tmp_path, body)
    with pytest.raises(TemplateError) as caught:
        read_catalog(path)
    assert str(caught.value).startswith(f"{path}:{line}: translation catalog:")
    assert said in str(caught.value)


def test_a_staff_catalog_comes_first_and_english_is_the_last_word(tmp_path: Path) -> None:
    staff = tmp_path / "locale" / "es" / "LC_MESSAGES"
    staff.mkdir(parents=True)
    _po(staff, 'msgid "Hello,"\nmsgstr "¡Buenas!"\n').rename(staff / "digest.po")
    words = localisers(templates=tmp_path)["es"]
    assert words.gettext("Hello,") == "¡Buenas!"
    assert words.gettext("Unsubscribe") == "Darse de baja"  # the project's, below
    assert words.gettext("A string nobody translated") == "A string nobody translated"


@pytest.mark.parametrize(
    ("language", "period", "long", "number"),
    [
        ("en", "16-22 Nov 2026", "24 November 2026", "12,345"),
        ("es", "16–22 nov 2026", "24 de noviembre de 2026", "12.345"),
        ("fr", "16–22 nov. 2026", "24 novembre 2026", "12\u202f345"),
    ],
)
def test_dates_and_numbers_follow_the_language(
    language: str, period: str, long: str, number: str
) -> None:
    assert format_period(date(2026, 11, 16), date(2026, 11, 22), language) == period
    assert long_date(date(2026, 11, 24), language) == long
    assert format_number(12345, language) == number


def test_the_taxonomys_names_in_other_languages_are_read_and_checked() -> None:
    taxonomy = load_taxonomy()
    assert taxonomy.names["es"]["Central America"] == "Centroamérica"
    assert taxonomy.names["fr"]["Health"] == "Santé"
    every = (*taxonomy.regions, *taxonomy.topics)
    assert all(name in taxonomy.names[code] for code in ("es", "fr") for name in every)
    with pytest.raises(TaxonomyError, match=r"t\.yaml:2: A\.names: expected a language code"):
        parse_taxonomy("regions:\n  A: {terms: [x], names: {Spanish: Ah}}\n", "t.yaml")
    with pytest.raises(TaxonomyError, match=r"t\.yaml:2: A\.names\.es: expected the name"):
        parse_taxonomy("regions:\n  A: {terms: [x], names: {es: ''}}\n", "t.yaml")
