"""RSS 2.0 and Atom feeds, from a file or an http(s) URL, parsed by feedparser."""

from __future__ import annotations

import calendar
import urllib.error
import urllib.request
import xml.sax
from datetime import UTC, date, datetime
from pathlib import Path

import feedparser

from ..errors import SourceError
from ..models import Item
from .html import html_to_text
from .ids import item_id

FETCH_TIMEOUT = 30


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "digest/0.1 (+feed reader)"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(
            f"{url}: cannot fetch feed: {reason}",
            hint="check the URL and the network; the other sources were still read",
        ) from exc


def _entry_date(entry: feedparser.FeedParserDict) -> date | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), UTC).date()
    return None


def _summary_html(entry: feedparser.FeedParserDict) -> str:
    """The entry's own summary where it has one, else its content (the whole article, which
    the digest shows an excerpt of). feedparser copies the content into `summary` when an RSS
    item has no description, so the two are compared."""
    summary = entry.get("summary") or ""
    contents = [c.get("value", "") for c in entry.get("content", []) if c.get("value")]
    if summary and summary not in contents:
        return str(summary)
    return contents[0] if contents else str(summary)


def parse_feed(data: bytes, location: str) -> list[Item]:
    parsed = feedparser.parse(data)
    problem = parsed.get("bozo_exception")
    # A feed that is not well-formed XML may be cut short: take none of it rather than
    # half of it (it is read again, whole, once fixed). Milder issues (a wrong declared
    # encoding) leave the entries intact and are accepted.
    if parsed.bozo and (isinstance(problem, xml.sax.SAXParseException) or not parsed.entries):
        where = f"line {problem.getLineNumber()}: " if hasattr(problem, "getLineNumber") else ""
        raise SourceError(
            f"{location}: not a readable RSS or Atom feed: {where}{problem}",
            hint="open the file or URL and check that it is well-formed RSS 2.0 or Atom XML",
        )
    if not parsed.get("version") and not parsed.entries:
        raise SourceError(f"{location}: not an RSS or Atom feed (no channel or feed element)")
    items: list[Item] = []
    for number, entry in enumerate(parsed.entries, 1):
        title = html_to_text(entry.get("title", ""))
        when = _entry_date(entry)
        if not title or when is None:
            raise SourceError(
                f"{location}: entry {number}: missing {'title' if not title else 'date'}",
                hint="every entry needs a title and a published or updated date",
            )
        summary_html = _summary_html(entry)
        link = entry.get("link") or None
        tags = tuple(t.get("term", "").strip() for t in entry.get("tags", []) if t.get("term"))
        items.append(
            Item(
                id=item_id(entry.get("id"), link, when, title),
                title=title,
                date=when,
                summary=html_to_text(summary_html),
                link=link,
                source=location,
                categories=tags,
            )
        )
    return items


def read_feed(location: str) -> list[Item]:
    if location.startswith(("http://", "https://")):
        data = _fetch(location)
    else:
        data = Path(location).read_bytes()
    return parse_feed(data, location)
