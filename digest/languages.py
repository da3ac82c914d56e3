"""The languages digest reads and writes, and telling which one a news item is in.

Readers' languages (`reader_languages`): English, and each language the project has a
translation catalog for (digest/locale/<code>/LC_MESSAGES/digest.po): en, es and fr.

Detection uses lingua (lingua-language-detector), restricted to English, Spanish and French:
it is accurate on short text, such as a headline and a summary. The detector is built once per
process, on first use (measured: 0.5 s and about 130 MB for these three languages' models;
then about 0.1 ms an item). It answers None when unsure: text too short to judge, or a mix
where no language clearly leads; the caller then falls back to `default_language` and warns.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

from .caches import memo

SUPPORTED = ("en", "es", "fr")
MIN_LETTERS = 12  # shorter text is not judged ("Haití", "OK")
MIN_CONFIDENCE = 0.6  # the leading language's share of lingua's confidence
MIN_LEAD = 0.2  # and its lead over the runner-up

SOURCE_LANGUAGE = "en"  # the language the templates and the code are written in
DOMAIN = "digest"  # the catalogs' gettext domain: digest/locale/<code>/LC_MESSAGES/digest.po
_TAG = re.compile(r"^\s*([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*\s*$")


def normalise_language(tag: str | None) -> str | None:
    """A feed's language tag as one of SUPPORTED: "es-ES", "fr_FR", "en-us", "EN" -> es, fr,
    en; "spa", "fra"/"fre", "eng" too; anything else (None, "de", "x-klingon") -> None."""
    if not tag:
        return None
    match = _TAG.match(tag)
    if not match:
        return None
    primary = match.group(1).lower()
    primary = {"eng": "en", "spa": "es", "fra": "fr", "fre": "fr"}.get(primary, primary)
    return primary if primary in SUPPORTED else None


@lru_cache(maxsize=1)
def _detector() -> Any:
    from lingua import Language, LanguageDetectorBuilder

    return (
        LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SPANISH, Language.FRENCH)
        .with_preloaded_language_models()
        .build()
    )


_CODES = {"ENGLISH": "en", "SPANISH": "es", "FRENCH": "fr"}


def detect_language(text: str) -> str | None:
    """en, es or fr for `text`, or None when unsure (too short, or no clear leader)."""
    if sum(c.isalpha() for c in text) < MIN_LETTERS:
        return None
    values = _detector().compute_language_confidence_values(text)
    if not values:
        return None
    best = values[0]
    runner_up = values[1].value if len(values) > 1 else 0.0
    if best.value < MIN_CONFIDENCE or best.value - runner_up < MIN_LEAD:
        return None
    return _CODES.get(best.language.name)


@memo(maxsize=1)
def reader_languages() -> tuple[str, ...]:
    """The languages a digest and the web pages can be written in: English first, then every
    language with a catalog in digest/locale, in alphabetical order."""
    folder = resources.files("digest").joinpath("locale")
    found = (
        sorted(
            entry.name
            for entry in folder.iterdir()
            if entry.joinpath("LC_MESSAGES", f"{DOMAIN}.po").is_file()
        )
        if folder.is_dir()
        else []
    )
    return (SOURCE_LANGUAGE, *(code for code in found if code != SOURCE_LANGUAGE))


def reader_language(value: Any) -> str | None:
    """A reader's language as `reader_languages` spells it ("ES", "es-MX", "fr_FR" -> es, fr),
    or None when the project has no translation for it."""
    if not isinstance(value, str):
        return None
    match = _TAG.match(value)
    code = match.group(1).lower() if match else ""
    return code if code in reader_languages() else None
