"""`read_sources()`: every item of every source, one reader per format, chosen by extension
or scheme.

It never stops at a bad source: each problem is returned with its path and why, and the other
sources still load. What could be read despite something wrong (a feed that is not
well-formed XML, items whose language cannot be told) comes with a warning. The same story
from two sources (same link, or same title and date) comes back once. With `seen` (what each
source was when last read), a file that has not changed is not read again, and a feed URL is
fetched with a conditional GET, so an unchanged one costs one 304: their items are in the
state already.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path

from ..clock import utcnow
from ..errors import SourceError
from ..models import Item, SourceRecord
from ..settings import SourceSettings, source_for
from . import feed, listing, markdown
from .fetch import Fetched, Fetcher, FetchLimits
from .item_languages import settle_languages
from .results import Read, SourceResult

FileReader = Callable[[Path, SourceSettings, str], Read]


def _listing(path: Path, source: SourceSettings, label: str) -> Read:
    return Read(listing.read_listing(str(path)))


def _markdown(path: Path, source: SourceSettings, label: str) -> Read:
    return Read(markdown.read_markdown(str(path)))


def _feed_file(path: Path, source: SourceSettings, label: str) -> Read:
    return feed.parse_feed(path.read_bytes(), str(path), label=label, language=source.language)


READERS: dict[str, FileReader] = {
    ".txt": _listing,
    ".md": _markdown,
    ".markdown": _markdown,
    ".xml": _feed_file,
    ".rss": _feed_file,
    ".atom": _feed_file,
}


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def expand(source: str) -> list[str]:
    """A folder means every readable file in it (sorted, recursively); a URL is itself."""
    if is_url(source):
        return [source]
    path = Path(source)
    if path.is_dir():
        return [
            str(p)
            for p in sorted(path.rglob("*"))
            if p.is_file() and p.suffix.lower() in READERS and not p.name.startswith(".")
        ]
    return [source]


def label_of(location: str, source: SourceSettings | None) -> str:
    """How messages name a source: its name and where it is, or where it is."""
    return f"'{source.name}' ({location})" if source and source.name else location


def _locations(sources: list[SourceSettings]) -> Iterator[tuple[str, SourceSettings]]:
    """Each file and feed once, with the settings that apply to it."""
    done: set[str] = set()
    for entry in sources:
        for location in expand(entry.path):
            if location not in done:
                done.add(location)
                yield location, source_for(location, sources) or entry


def read_sources(
    sources: Iterable[SourceSettings | str],
    known_tags: set[str] | None = None,
    seen: Mapping[str, SourceRecord] | None = None,
    limits: FetchLimits | None = None,
) -> SourceResult:
    """Every item of every source; with `seen` (what each source was when last read), files
    that have not changed are skipped, feeds are fetched conditionally, and what to remember
    of each source is in `records`."""
    entries = [s if isinstance(s, SourceSettings) else SourceSettings(s) for s in sources]
    result = SourceResult()
    kept: dict[object, Item] = {}  # by link and by title and date: the same story once
    now = utcnow()
    with Fetcher(limits) as fetcher:
        for location, source in _locations(entries):
            result.files += 1
            for item in _read_one(location, source, seen, now, fetcher, result):
                _keep(item, location, known_tags, kept, result)
    return result


def _read_one(
    location: str,
    source: SourceSettings,
    seen: Mapping[str, SourceRecord] | None,
    now: datetime,
    fetcher: Fetcher,
    result: SourceResult,
) -> list[Item]:
    """One location's items: none when it is unchanged or cannot be read (`result` says so)."""
    before = seen.get(location) if seen is not None else None
    if before is not None and before.error:
        before = None  # it failed last time: read it whole
    remember = seen is not None
    label = label_of(location, source)
    try:
        if is_url(location):
            read = _read_url(location, source, label, before, remember, now, fetcher, result)
        else:
            read = _read_file(location, source, label, before, remember, now, result)
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
        if read is None:
            return []
        items, warnings = settle_languages(read.items, source.language, label)
        result.warnings += read.warnings + warnings
        return items
    result.problems.append(problem)
    result.failed.append(location)
    if remember:
        result.records.append(SourceRecord(location, checked_at=now, error=problem.message))
    return []


# -- fingerprints: what a source was, and with which reading settings (its language) ----------
def file_fingerprint(path: Path, before: str | None) -> str:
    """`size:mtime:sha256`. When size and time match `before`, its hash is kept unread."""
    info = path.stat()
    stamp = f"{info.st_size}:{info.st_mtime_ns}"
    if before is not None and before.startswith(stamp + ":"):
        return before
    return f"{stamp}:{hashlib.sha256(path.read_bytes()).hexdigest()[:32]}"


# What was read depends on the readers too: a source remembered by readers of another version
# (before languages and tolerant feeds) is read once more.
READING_VERSION = "2"


def _reading_key(source: SourceSettings) -> str:
    """The readers' version and the settings that change what is read: `2:es`, `2:detect`."""
    return f"{READING_VERSION}:{source.language or 'detect'}"


def _keyed(fingerprint: str, source: SourceSettings) -> str:
    """The fingerprint with its reading key: `size:mtime:sha~2:es`."""
    return f"{fingerprint}~{_reading_key(source)}"


def _content_and_key(fingerprint: str | None) -> tuple[str, str] | None:
    """A fingerprint's content hash and reading key (size and time left out)."""
    if not fingerprint:
        return None
    content, _, key = fingerprint.partition("~")
    return content.rsplit(":", 1)[-1], key


def _read_file(
    location: str,
    source: SourceSettings,
    label: str,
    before: SourceRecord | None,
    remember: bool,
    now: datetime,
    result: SourceResult,
) -> Read | None:
    """A file's items, or None when it is the same as when last read."""
    reader = reader_for(location)
    if remember:
        previous = before.fingerprint.partition("~")[0] if before and before.fingerprint else None
        fingerprint = _keyed(file_fingerprint(Path(location), previous), source)
        record = SourceRecord(location, fingerprint, checked_at=now)
        unchanged = before is not None and _content_and_key(before.fingerprint) == (
            _content_and_key(fingerprint)
        )
        read = None if unchanged else reader(Path(location), source, label)
        result.records.append(record)  # only once read: a failure above records the error
        result.unchanged += unchanged
        return read
    return reader(Path(location), source, label)


def _read_url(
    location: str,
    source: SourceSettings,
    label: str,
    before: SourceRecord | None,
    remember: bool,
    now: datetime,
    fetcher: Fetcher,
    result: SourceResult,
) -> Read | None:
    """A feed URL's items, or None when it has not changed (a 304, or the same bytes)."""
    previous = _content_and_key(before.fingerprint) if before else None
    if previous is None or previous[1] != _reading_key(source):
        before = None  # never read whole, or read with other settings: fetch it whole
    fetched = fetcher.fetch(
        location,
        etag=before.etag if before else None,
        last_modified=before.last_modified if before else None,
    )
    fingerprint = (
        before.fingerprint
        if fetched.not_modified and before
        else _keyed(hashlib.sha256(fetched.body).hexdigest()[:32], source)
    )
    unchanged = fetched.not_modified or (before is not None and before.fingerprint == fingerprint)
    if remember:
        result.records.append(
            SourceRecord(location, fingerprint, fetched.etag or (before.etag if before else None),
                         fetched.last_modified or (before.last_modified if before else None),
                         checked_at=now)
        )  # fmt: skip
    if fetched.moved_to:
        result.warnings.append(
            f"feed {label} has moved permanently to {fetched.moved_to}; write the new address "
            "in the settings"
        )
    if unchanged:
        result.unchanged += 1
        return None
    return feed.parse_feed(
        fetched.body, location, _headers(fetched), label=label, language=source.language
    )


def _headers(fetched: Fetched) -> dict[str, str]:
    """What feedparser takes from the response: its type, language and final address."""
    headers = {"content-location": fetched.url}
    if fetched.content_type:
        headers["content-type"] = fetched.content_type
    if fetched.content_language:
        headers["content-language"] = fetched.content_language
    return headers


def reader_for(location: str) -> FileReader:
    suffix = Path(location).suffix.lower()
    if suffix not in READERS:
        raise SourceError(
            f"{location}: unknown source format '{suffix or '(no extension)'}'",
            hint=f"use one of {', '.join(sorted(READERS))}, or an http(s) feed URL",
        )
    return READERS[suffix]


def dedupe_key(item: Item) -> tuple[str, ...]:
    return (" ".join(item.title.casefold().split()), item.date.isoformat())


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
