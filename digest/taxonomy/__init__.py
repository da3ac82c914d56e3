"""Regions and topics, the words that signal them, and `tag()` (pure).

Matching is whole-word, case-insensitive and accent-insensitive (Panamá = Panama); at any
position the longest term wins, so "Dominican Republic" is never read as "Dominica". Short
capitals (US, EU, RCM, WHO) match only in capitals; place names only with a capital letter.
The rules for places, ambiguous places and topic context are in tagging.py and in the header
of digest/data/taxonomy.yaml.
"""

from __future__ import annotations

import dataclasses
import hashlib
from importlib import resources
from pathlib import Path

from ..caches import register_mapping
from .model import Taxonomy
from .parse import LANGUAGES, parse_taxonomy
from .tagging import SOURCE_DEFAULT, find_tags, tag
from .text import fold

DEFAULT_TAXONOMY = "taxonomy.yaml"

__all__ = [
    "DEFAULT_TAXONOMY",
    "LANGUAGES",
    "SOURCE_DEFAULT",
    "Taxonomy",
    "find_tags",
    "fold",
    "load_taxonomy",
    "parse_taxonomy",
    "tag",
]

_cache: dict[str, Taxonomy] = {}
register_mapping("digest.taxonomy.loaded", _cache)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The taxonomy from `path`, or the default one shipped inside the package (once per
    process for the same file and text)."""
    if path is None:
        text = resources.files("digest").joinpath("data", DEFAULT_TAXONOMY).read_text("utf-8")
        label = f"(built-in) digest/data/{DEFAULT_TAXONOMY}"
    else:
        text, label = Path(path).read_text(encoding="utf-8"), str(path)
    key = f"{label}\0{text}"
    if key not in _cache:
        taxonomy = parse_taxonomy(text, label)
        fingerprint = hashlib.sha256(text.encode() + _rules_fingerprint()).hexdigest()[:16]
        _cache[key] = dataclasses.replace(taxonomy, fingerprint=fingerprint)
    return _cache[key]


def _rules_fingerprint() -> bytes:
    """The place data and the tagging code: when either changes, stored tags are redone."""
    digest = hashlib.sha256()
    package = resources.files("digest")
    digest.update(package.joinpath("data", "places.json").read_bytes())
    for name in sorted(p.name for p in package.joinpath("taxonomy").iterdir()):
        if name.endswith(".py"):
            digest.update(package.joinpath("taxonomy", name).read_bytes())
    return digest.digest()
