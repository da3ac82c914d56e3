"""Reading the sources: the office's news listing (`listing`, dates in English, Spanish and
French from `dates`), Markdown items (`markdown`), RSS and Atom feeds (`feed`) from files or
URLs (`fetch`), each item's language (`item_languages`), and `read_sources`, which reads them
all (`reading`)."""

from .fetch import USER_AGENT, FetchLimits
from .reading import (
    READERS,
    dedupe_key,
    expand,
    file_fingerprint,
    is_url,
    label_of,
    read_sources,
    reader_for,
    source_for,
)
from .results import Read, SourceResult

__all__ = [
    "READERS",
    "USER_AGENT",
    "FetchLimits",
    "Read",
    "SourceResult",
    "dedupe_key",
    "expand",
    "file_fingerprint",
    "is_url",
    "label_of",
    "read_sources",
    "reader_for",
    "source_for",
]
