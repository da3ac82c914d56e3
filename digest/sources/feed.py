"""RSS 2.0 and Atom feeds, from a file or an http(s) URL, parsed by feedparser."""

from __future__ import annotations

import calendar
import urllib.error
import urllib.request
import xml.sax
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import feedparser

from ..errors import SourceError
from ..models import Item
from .ids import item_id

FETCH_TIMEOUT = 30
_BLOCKS = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "blockquote",
}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text from a feed's HTML: tags dropped, entities decoded, paragraphs kept."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    paragraphs = ("".join(parser.parts)).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


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
        summary_html = entry.get("summary") or ""
        if not summary_html and entry.get("content"):
            summary_html = entry.content[0].get("value", "")
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
