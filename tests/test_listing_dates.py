"""The news listing in English, Spanish and French: date lines read with CLDR's formats and
month names (Babel), strictly: a line is a date line only when it is nothing but a date."""

from __future__ import annotations

import time
from datetime import date

import pytest

from digest.errors import SourceError
from digest.sources.dates import parse_date_line
from digest.sources.listing import parse_listing, read_listing

from .conftest import DATA, SEED

LISTINGS = DATA / "listings"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # the office's English forms, as read before
        ("13 October, 2020", date(2020, 10, 13)),
        ("13 October 2020", date(2020, 10, 13)),
        ("October 13, 2020", date(2020, 10, 13)),
        ("13 Oct, 2020", date(2020, 10, 13)),
        ("13 Oct 2020", date(2020, 10, 13)),
        ("2020-10-13", date(2020, 10, 13)),
        ("  13 October, 2020  ", date(2020, 10, 13)),
        # Spanish
        ("24 de noviembre de 2026", date(2026, 11, 24)),
        ("24 de Noviembre de 2026", date(2026, 11, 24)),
        ("martes, 24 de noviembre de 2026", date(2026, 11, 24)),
        ("1.º de octubre de 2026", date(2026, 10, 1)),
        ("1º de octubre de 2026", date(2026, 10, 1)),
        ("24 nov 2026", date(2026, 11, 24)),
        ("5 sept. 2026", date(2026, 9, 5)),
        ("24 noviembre 2026", date(2026, 11, 24)),
        # French
        ("24 novembre 2026", date(2026, 11, 24)),
        ("mardi 24 novembre 2026", date(2026, 11, 24)),
        ("1er octobre 2026", date(2026, 10, 1)),
        ("5 février 2026", date(2026, 2, 5)),
        ("5 fevrier 2026", date(2026, 2, 5)),  # accents ignored
        ("5 févr. 2026", date(2026, 2, 5)),
        ("15 août 2026", date(2026, 8, 15)),
        ("15 déc. 2026", date(2026, 12, 15)),
    ],
)
def test_date_lines(line: str, expected: date) -> None:
    assert parse_date_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "El 24 de noviembre de 2026 se celebrará una segunda sesión.",
        "24 de noviembre de 2026 en Panamá",
        "Informe anual 2026",
        "Migration in 2026: a review",
        "24 de nowember de 2026",
        "November 2026",
        "24/11/2026",  # numeric day and month: which comes first depends on the language
        "13 October, 20201",
        "",
    ],
)
def test_lines_that_are_not_just_a_date(line: str) -> None:
    assert parse_date_line(line) is None


def test_a_spanish_listing() -> None:
    items = read_listing(str(LISTINGS / "noticias-es.txt"))
    assert [(i.date, i.title) for i in items] == [
        (
            date(2026, 11, 24),
            "Honduras y Guatemala coordinan la atención a personas migrantes retornadas",
        ),
        (date(2026, 11, 3), "Taller regional sobre trata de personas en San José"),
        (date(2026, 10, 1), "Panamá publica nuevas cifras sobre el tránsito por el Darién"),
    ]
    # a date inside a sentence stays in the summary
    assert items[1].summary.endswith("El 24 de noviembre de 2026 se celebrará una segunda sesión.")
    assert items[0].summary.count("\n\n") == 1


def test_a_french_listing() -> None:
    items = read_listing(str(LISTINGS / "actualites-fr.txt"))
    assert [(i.date, i.title[:40]) for i in items] == [
        (date(2026, 11, 24), "Haïti : le retour des familles déplacées"),
        (date(2026, 11, 3), "La Martinique accueille un atelier sur l"),
        (date(2026, 10, 1), "Nouvelles données sur la migration dans "),
    ]


def test_a_date_that_does_not_exist_names_its_line() -> None:
    with pytest.raises(
        SourceError, match=r"^news\.txt:4: '31 de febrero de 2026' is not a real date"
    ):
        parse_listing("1 de marzo de 2026\n\nTítulo\n31 de febrero de 2026\n\nOtro\n", "news.txt")


def test_the_seed_listing_reads_as_before_and_fast() -> None:
    text = SEED.read_text()
    assert len(parse_listing(text, "seed.txt")) == 10
    big = "\n\n".join([text] * 200)  # about 13,000 lines
    started = time.perf_counter()
    items = parse_listing(big, "big.txt")
    elapsed = time.perf_counter() - started
    assert len(items) == 2000
    assert elapsed < 2.0, f"{elapsed:.2f} s for {len(big.splitlines())} lines"
