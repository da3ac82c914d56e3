"""Language tags from feeds, and detecting an item's language (lingua, en/es/fr only)."""

from __future__ import annotations

import pytest

from digest.languages import SUPPORTED, detect_language, normalise_language


def test_supported_languages() -> None:
    assert SUPPORTED == ("en", "es", "fr")


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("es-ES", "es"),
        ("fr_FR", "fr"),
        ("en-us", "en"),
        ("EN", "en"),
        ("es-419", "es"),
        ("fr-CA", "fr"),
        (" en-GB ", "en"),
        ("spa", "es"),
        ("fre", "fr"),
        ("de", None),
        ("de-DE", None),
        ("x-klingon", None),
        ("english", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_language(tag: str | None, language: str | None) -> None:
    assert normalise_language(tag) == language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Putin Thanks Trump for Helping Russia Thwart Terrorist Attack", "en"),
        ("Migrantes hondureños retornan al país tras la deportación desde México", "es"),
        ("Des migrants haïtiens bloqués à la frontière dominicaine depuis lundi", "fr"),
        ("El Salvador and Belize share experiences in protecting migrant children", "en"),
        ("Le Guatemala et le Honduras signent un accord sur la mobilité", "fr"),
    ],
)
def test_detects_english_spanish_and_french(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize("text", ["", "OK", "Haití", "2026", "RCM, OIM"])
def test_too_short_to_judge_is_none(text: str) -> None:
    assert detect_language(text) is None


def test_an_even_mix_is_none() -> None:
    assert detect_language("The mayor said que no hay dinero para the project") is None
