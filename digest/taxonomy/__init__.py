"""Regions and topics, the words that signal them, and `tag()` (pure).

Matching is whole-word, case-insensitive and accent-insensitive (Panamá = Panama); at any
position the longest term wins, so "Dominican Republic" is never read as "Dominica". Short
capitals (US, EU, RCM, WHO) match only in capitals; place names only with a capital letter.
The rules for places, ambiguous places and topic context are in tagging.py and in the header
of digest/data/taxonomy.yaml.
"""

from __future__ import annotations

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
    from importlib import resources

    if path is None:
        text = resources.files("digest").joinpath("data", DEFAULT_TAXONOMY).read_text("utf-8")
        label = f"(built-in) digest/data/{DEFAULT_TAXONOMY}"
    else:
        text, label = Path(path).read_text(encoding="utf-8"), str(path)
    key = f"{label}\0{hash(text)}"
    if key not in _cache:
        _cache[key] = parse_taxonomy(text, label)
    return _cache[key]
