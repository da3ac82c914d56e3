"""Read items from every configured source: one reader per format, chosen by extension or scheme.

`read_sources()` never stops at a bad source: each problem is returned with its path and why,
and the other sources still load. The same story from two sources (same link, or same title
and date) comes back once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SourceError
from ..models import Item
from . import feed, listing, markdown

Reader = Callable[[str], list[Item]]

READERS: dict[str, Reader] = {
    ".txt": listing.read_listing,
    ".md": markdown.read_markdown,
    ".markdown": markdown.read_markdown,
    ".xml": feed.read_feed,
    ".rss": feed.read_feed,
    ".atom": feed.read_feed,
}


@dataclass
class SourceResult:
    items: list[Item] = field(default_factory=list)
    problems: list[SourceError] = field(default_factory=list)
    files: int = 0


def expand(source: str) -> list[str]:
    """A folder means every readable file in it (sorted, recursively); a URL is itself."""
    if source.startswith(("http://", "https://")):
        return [source]
    path = Path(source)
    if path.is_dir():
        return [
            str(p)
            for p in sorted(path.rglob("*"))
            if p.is_file() and p.suffix.lower() in READERS and not p.name.startswith(".")
        ]
    return [source]


def reader_for(location: str) -> Reader:
    if location.startswith(("http://", "https://")):
        return feed.read_feed
    suffix = Path(location).suffix.lower()
    if suffix not in READERS:
        raise SourceError(
            f"{location}: unknown source format '{suffix or '(no extension)'}'",
            hint=f"use one of {', '.join(sorted(READERS))}, or an http(s) feed URL",
        )
    return READERS[suffix]


def dedupe_key(item: Item) -> tuple[str, ...]:
    return (" ".join(item.title.casefold().split()), item.date.isoformat())


def read_sources(sources: Iterable[str], known_tags: set[str] | None = None) -> SourceResult:
    result = SourceResult()
    by_link: dict[str, Item] = {}
    by_title: dict[tuple[str, ...], Item] = {}
    for source in sources:
        for location in expand(source):
            result.files += 1
            try:
                items = reader_for(location)(location)
            except SourceError as exc:
                result.problems.append(exc)
                continue
            except (OSError, UnicodeDecodeError) as exc:
                result.problems.append(SourceError(f"{location}: cannot read: {exc}"))
                continue
            except Exception as exc:  # one bad file never stops the others (nor the send)
                result.problems.append(
                    SourceError(
                        f"{location}: cannot read: {type(exc).__name__}: {exc}",
                        hint="fix or remove the file; the other sources were still read",
                    )
                )
                continue
            for item in items:
                unknown = [
                    t
                    for t in (*item.regions, *item.topics)
                    if known_tags is not None and t not in known_tags
                ]
                if unknown:
                    result.problems.append(
                        SourceError(
                            f"{location}: item {item.title!r}: unknown region or topic "
                            f"{', '.join(map(repr, unknown))}; the item was skipped",
                            hint="use a name from `digest items --taxonomy` or the taxonomy file",
                        )
                    )
                    continue
                if (item.link and item.link in by_link) or dedupe_key(item) in by_title:
                    continue
                if item.link:
                    by_link[item.link] = item
                by_title[dedupe_key(item)] = item
                result.items.append(item)
    return result
