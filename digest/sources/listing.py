"""The office's news listing: a date line (`13 October, 2020`, `24 de noviembre de 2026`,
`24 novembre 2026`; see `dates`), a title line, then summary paragraphs, repeated."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ..errors import SourceError
from ..models import Item
from .dates import parse_date_line
from .ids import item_id


def _date_lines(lines: list[str], location: str) -> list[tuple[int, date]]:
    """The lines that are dates, with their dates; a line shaped like a date that is not a
    real one (30 February) is an error naming it."""
    starts = []
    for number, line in enumerate(lines):
        try:
            when = parse_date_line(line)
        except ValueError as exc:
            raise SourceError(
                f"{location}:{number + 1}: {line.strip()!r} is not a real date ({exc})",
                hint="correct the date line",
            ) from exc
        if when is not None:
            starts.append((number, when))
    return starts


def parse_listing(text: str, location: str) -> list[Item]:
    """Split a listing into items. Raises SourceError (with the line) when it holds none."""
    lines = text.splitlines()
    starts = _date_lines(lines, location)
    if not starts:
        raise SourceError(
            f"{location}: no items found",
            hint="a listing is a date line such as '13 October, 2020' or '24 de noviembre de "
            "2026', a title line, then the summary, repeated",
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
