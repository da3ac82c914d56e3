"""RSS 2.0 and Atom feeds as the web serves them, parsed by feedparser.

feedparser reads feeds that are not well-formed XML in its tolerant mode (a blank line
before `<?xml`, a stray character, HTML entities XML does not define), and works out
encodings that lie about themselves; each such feed is read with a warning naming it and
the problem. A feed is refused only when nothing usable comes out of it: no entry with a
title and a date. Relative links are resolved against the feed's address (or its `xml:base`,
or for a file the site's link in the feed); an entry's language is its `xml:lang` or the
feed's `<language>`.
"""

from __future__ import annotations

import calendar
import re
import xml.sax
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from ..errors import SourceError
from ..languages import SUPPORTED, normalise_language
from ..models import Item
from .html import CONTROL_CHARACTERS, html_to_text
from .ids import item_id
from .results import Read

if TYPE_CHECKING:  # feedparser (10 MB) is imported when a feed is read: a send's worker never
    import feedparser

SHOWN = 3  # entries named in one warning


def _summary_html(entry: feedparser.FeedParserDict) -> str:
    """The entry's own summary where it has one, else its content (the whole article, which
    the digest shows an excerpt of). feedparser copies the content into `summary` when an RSS
    item has no description, so the two are compared."""
    summary = entry.get("summary") or ""
    contents = [c.get("value", "") for c in entry.get("content", []) if c.get("value")]
    if summary and summary not in contents:
        return str(summary)
    return contents[0] if contents else str(summary)


def _entry_date(entry: feedparser.FeedParserDict) -> date | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), UTC).date()
    return None


_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
MAX_STRAY_BYTES = 100  # more than this many bytes that are not UTF-8: it is not a UTF-8 feed


def repair_mixed_utf8(data: bytes, content_type: str | None = None) -> tuple[bytes, int]:
    """A feed in UTF-8 but for a few bytes of Windows-1252 (text pasted into a CMS), with
    those bytes re-encoded, and how many there were. feedparser would read the whole feed as
    Windows-1252 and garble every other accented letter. Anything else is returned as it is."""
    charset = re.search(r"charset=([\w.-]+)", content_type or "")
    declared = _DECLARED.match(data[:512])
    names = {charset.group(1).lower()} if charset else set()
    if declared:
        names.add(declared.group(1).decode("ascii").lower())
    if names - {"utf-8", "utf8"} or not _MULTIBYTE.search(data):
        return data, 0
    parts: list[str] = []
    position, stray = 0, 0
    while True:
        try:
            parts.append(data[position:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            parts.append(data[position : position + exc.start].decode("utf-8"))
            bad = data[position + exc.start : position + exc.end]
            parts.append(bad.decode("cp1252", errors="replace"))
            stray += len(bad)
            position += exc.end
            if stray > MAX_STRAY_BYTES:
                return data, 0
    return ("".join(parts).encode("utf-8"), stray) if stray else (data, 0)


def parse_feed(
    data: bytes,
    location: str,
    headers: dict[str, str] | None = None,
    label: str | None = None,
    language: str | None = None,
) -> Read:
    """The items of a feed, read tolerantly; `headers` are the HTTP response's (content-type,
    content-language) plus `content-location`: the address it came from, for relative links.
    `language` (the source's setting) overrides what the feed says. Raises SourceError only
    when nothing usable comes out."""
    label = label or location
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    data, stray = repair_mixed_utf8(data, headers.get("content-type"))
    import feedparser

    parsed = feedparser.parse(data, response_headers=headers)
    shift = _line_shift(data, parsed)
    read = Read()
    if stray:
        read.warnings.append(
            f"feed {label}: {stray} byte(s) are not UTF-8 although the feed is; read as "
            "Windows-1252"
        )
    _check_parsed(parsed, location, label, read, shift)
    site = parsed.feed.get("link") if _is_web(parsed.feed.get("link")) else None
    skipped: list[str] = []
    unlinked: list[str] = []
    for number, entry in enumerate(parsed.entries, 1):
        item = _item(entry, location, site, language)
        if item is None:
            skipped.append(_entry_label(entry, number))
            continue
        if entry.get("link") and item.link is None:
            unlinked.append(repr(item.title))
        read.items.append(item)
    if not read.items and parsed.entries:
        raise _unusable(parsed, location, shift)
    _note(read, skipped, f"feed {label}: skipped {{n}} entry(ies) without a title or a date")
    _note(read, unlinked, f"feed {label}: {{n}} link(s) that are not http(s) addresses, "
          "even resolved against the feed's address, were left out")  # fmt: skip
    if language is None:
        _language_warning(parsed, label, read)
    return read


def _line_shift(data: bytes, parsed: feedparser.FeedParserDict) -> int:
    """1 when feedparser put an XML declaration line of its own before the feed (it does when
    the feed does not start with one, e.g. after a blank line), so its line numbers are one
    more than the file's; else 0."""
    try:
        text = data[:512].decode(parsed.get("encoding") or "utf-8", errors="replace")
    except LookupError:
        return 0
    return 0 if text.lstrip("\ufeff").startswith("<?xml") else 1


def _line(problem: xml.sax.SAXParseException, shift: int) -> int:
    """The line of the feed as written where the XML parser stopped."""
    return max(1, problem.getLineNumber() - shift)


def _unusable(parsed: feedparser.FeedParserDict, location: str, shift: int) -> SourceError:
    """A feed with entries but none usable: why, the XML problem first if it has one."""
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    count = len(parsed.entries)
    none = f"none of its {count} entry(ies) has both a title and a date"
    if isinstance(problem, xml.sax.SAXParseException):
        return SourceError(
            f"{location}: not a readable RSS or Atom feed: line {_line(problem, shift)}: "
            f"{problem.getMessage()}; read in tolerant mode, {none}",
            hint="open the file or URL and check that it is RSS 2.0 or Atom",
        )
    return SourceError(
        f"{location}: no usable entries: {none}",
        hint="every entry needs a title and a published or updated date",
    )


def _check_parsed(
    parsed: feedparser.FeedParserDict, location: str, label: str, read: Read, shift: int
) -> None:
    """Refuse what is not a feed at all; warn about what feedparser had to tolerate."""
    from feedparser.exceptions import CharacterEncodingOverride, NonXMLContentType

    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    not_xml = isinstance(problem, xml.sax.SAXParseException)
    if not parsed.entries and (not_xml or not parsed.get("version")):
        where = f"line {_line(problem, shift)}: " if not_xml else ""
        raise SourceError(
            f"{location}: not a readable RSS or Atom feed: "
            + (f"{where}{problem.getMessage()}" if not_xml else "no channel or feed element"),
            hint="open the file or URL and check that it is RSS 2.0 or Atom",
        )
    if problem is None or isinstance(problem, NonXMLContentType):
        return
    if not_xml:
        read.warnings.append(
            f"feed {label} is not well-formed XML (line {_line(problem, shift)}: "
            f"{problem.getMessage()}); read in tolerant mode"
        )
    elif isinstance(problem, CharacterEncodingOverride):
        read.warnings.append(f"feed {label}: {problem}")
    else:
        read.warnings.append(
            f"feed {label}: {type(problem).__name__}: {problem}; read in tolerant mode"
        )


def _item(
    entry: feedparser.FeedParserDict, location: str, site: str | None, language: str | None
) -> Item | None:
    """One entry as an item, or None when it has no title or no date."""
    title = html_to_text(entry.get("title", ""))
    when = _entry_date(entry)
    if not title or when is None:
        return None
    summary_html = _summary_html(entry)
    link = _absolute(entry.get("link"), site)
    terms = (CONTROL_CHARACTERS.sub("", t.get("term") or "").strip() for t in entry.get("tags", []))
    tags = tuple(term for term in terms if term)
    return Item(
        id=item_id(entry.get("id"), link, when, title),
        title=title,
        date=when,
        summary=html_to_text(summary_html),
        link=link,
        source=location,
        categories=tags,
        language=language or normalise_language(_declared_language(entry)),
    )


def _declared_language(entry: feedparser.FeedParserDict) -> str | None:
    """The entry's `xml:lang` (feedparser carries the feed's `<language>` and the HTTP
    Content-Language down to it), else the feed's."""
    for key in ("title_detail", "summary_detail"):
        language = (entry.get(key) or {}).get("language")
        if language:
            return str(language)
    return None


def _language_warning(parsed: feedparser.FeedParserDict, label: str, read: Read) -> None:
    declared = parsed.feed.get("language")
    if declared and normalise_language(declared) is None:
        read.warnings.append(
            f"feed {label} says its language is {declared!r}, which digest does not read "
            f"({', '.join(SUPPORTED)}); its items' language is detected from their text"
        )


def _is_web(link: object) -> bool:
    return isinstance(link, str) and link.startswith(("http://", "https://"))


def _absolute(link: str | None, site: str | None) -> str | None:
    """An http(s) link: as given (feedparser resolved it against the feed's address or
    xml:base), else resolved against the site's link; else None."""
    if not link:
        return None
    link = link.strip()
    if not _is_web(link) and site:
        link = urljoin(site, link)
    return link if _is_web(link) else None


def _entry_label(entry: feedparser.FeedParserDict, number: int) -> str:
    title = html_to_text(entry.get("title", ""))
    return repr(title) if title else f"entry {number}"


def _note(read: Read, names: list[str], template: str) -> None:
    """One warning for a list of entries, naming the first few."""
    if not names:
        return
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN
                                        else "")  # fmt: skip
    read.warnings.append(template.format(n=len(names)) + f": {shown}")
