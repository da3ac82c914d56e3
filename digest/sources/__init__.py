"""Read items from every configured source: one reader per format, chosen by extension or scheme.

`read_sources()` never stops at a bad source: each problem is returned with its path and why,
and the other sources still load. The same story from two sources (same link, or same title
and date) comes back once. A file that has not changed since it was last read (`seen`, its
size, time and content hash) is not read again: its items are in the state already.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..clock import utcnow
from ..errors import SourceError
from ..models import Item, SourceRecord
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
    unchanged: int = 0  # files not read again: the same as when last read
    records: list[SourceRecord] = field(default_factory=list)  # what to remember of each


def file_fingerprint(path: Path, before: str | None) -> str:
    """`size:mtime:sha256`. When size and time match `before`, its hash is kept unread."""
    info = path.stat()
    stamp = f"{info.st_size}:{info.st_mtime_ns}"
    if before is not None and before.startswith(stamp + ":"):
        return before
    return f"{stamp}:{hashlib.sha256(path.read_bytes()).hexdigest()[:32]}"


def _same_content(before: SourceRecord, now: SourceRecord) -> bool:
    """The content hashes agree (a file touched but not changed counts as unchanged)."""
    if not before.fingerprint or not now.fingerprint:
        return False
    return before.fingerprint.rsplit(":", 1)[-1] == now.fingerprint.rsplit(":", 1)[-1]


def _unchanged(location: str, seen: Mapping[str, SourceRecord], now: datetime) -> SourceRecord:
    """What to remember of a file source now; its fingerprint says whether it changed."""
    before = seen.get(location)
    previous = before.fingerprint if before is not None and before.error is None else None
    fingerprint = file_fingerprint(Path(location), previous)
    return SourceRecord(location, fingerprint, checked_at=now)


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


def read_sources(
    sources: Iterable[str],
    known_tags: set[str] | None = None,
    seen: Mapping[str, SourceRecord] | None = None,
) -> SourceResult:
    """Every item of every source; with `seen` (what each source was when last read), files
    that have not changed are skipped and what to remember of each source is in `records`."""
    result = SourceResult()
    kept: dict[object, Item] = {}  # by link and by title and date: the same story once
    now = utcnow()
    for source in sources:
        for location in expand(source):
            result.files += 1
            for item in _read_one(location, seen, now, result):
                _keep(item, location, known_tags, kept, result)
    return result


def _read_one(
    location: str, seen: Mapping[str, SourceRecord] | None, now: datetime, result: SourceResult
) -> list[Item]:
    """One location's items: none when it is unchanged or cannot be read (`result` says so)."""
    record = None
    try:
        if seen is not None and not location.startswith(("http://", "https://")):
            record = _unchanged(location, seen, now)
            before = seen.get(location)
            if before and not before.error and _same_content(before, record):
                result.unchanged += 1
                result.records.append(record)
                return []
        items = reader_for(location)(location)
    except SourceError as exc:
        problem = exc
    except (OSError, UnicodeDecodeError) as exc:
        problem = SourceError(f"{location}: cannot read: {exc}")
    except Exception as exc:  # one bad file never stops the others (nor the send)
        problem = SourceError(
            f"{location}: cannot read: {type(exc).__name__}: {exc}",
            hint="fix or remove the file; the other sources were still read",
        )
    else:
        if record is not None:
            result.records.append(record)
        return items
    result.problems.append(problem)
    _failed(result, location, record, problem.message, now)
    return []


def _keep(
    item: Item,
    location: str,
    known_tags: set[str] | None,
    kept: dict[object, Item],
    result: SourceResult,
) -> None:
    """Add the item unless it names an unknown tag (a problem) or is a story already kept."""
    unknown = [
        t for t in (*item.regions, *item.topics) if known_tags is not None and t not in known_tags
    ]
    if unknown:
        result.problems.append(
            SourceError(
                f"{location}: item {item.title!r}: unknown region or topic "
                f"{', '.join(map(repr, unknown))}; the item was skipped",
                hint="use a name from `digest items --taxonomy` or the taxonomy file",
            )
        )
        return
    keys = [("title", *dedupe_key(item))] + ([("link", item.link)] if item.link else [])
    if any(key in kept for key in keys):
        return
    for key in keys:
        kept[key] = item
    result.items.append(item)


def _failed(
    result: SourceResult, location: str, record: SourceRecord | None, error: str, now: datetime
) -> None:
    """A source that failed is remembered failed: it is read again next time, whatever it is."""
    if record is not None:
        result.records.append(
            SourceRecord(location, record.fingerprint, checked_at=now, error=error)
        )
