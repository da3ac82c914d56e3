"""The office's news listing: a date line (`13 October, 2020`), a title line, then summary
paragraphs, repeated."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from ..errors import SourceError
from ..models import Item
from .ids import item_id

_DATE_FORMATS = ("%d %B, %Y", "%d %B %Y", "%B %d, %Y", "%d %b, %Y", "%d %b %Y", "%Y-%m-%d")
_LOOKS_LIKE_DATE = re.compile(
    r"^\s*(\d{1,2} [A-Za-z]+,? \d{4}|[A-Za-z]+ \d{1,2}, \d{4}|\d{4}-\d\d-\d\d)\s*$"
)


def parse_date_line(line: str) -> date | None:
    if not _LOOKS_LIKE_DATE.match(line):
        return None
    text = " ".join(line.split())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def parse_listing(text: str, location: str) -> list[Item]:
    """Split a listing into items. Raises SourceError (with the line) when it holds none."""
    lines = text.splitlines()
    starts = [(n, d) for n, line in enumerate(lines) if (d := parse_date_line(line)) is not None]
    if not starts:
        raise SourceError(
            f"{location}: no items found",
            hint="a listing is a date line such as '13 October, 2020', a title line, then the "
            "summary, repeated",
        )
    items: list[Item] = []
    for index, (start, when) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(lines)
        body = [line.strip() for line in lines[start + 1 : end]]
        paragraphs = [" ".join(p.split()) for p in "\n".join(body).split("\n\n") if p.strip()]
        if not paragraphs:
            raise SourceError(
                f"{location}:{start + 1}: date line with no title after it",
                hint="put the item's title on the line after its date",
            )
        title, summary = paragraphs[0], "\n\n".join(paragraphs[1:])
        items.append(
            Item(
                id=item_id(None, None, when, title),
                title=title,
                date=when,
                summary=summary,
                source=location,
            )
        )
    return items


def read_listing(location: str) -> list[Item]:
    return parse_listing(Path(location).read_text(encoding="utf-8-sig"), location)
