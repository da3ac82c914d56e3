"""Markdown items: YAML front matter (title, date, link, optional regions, topics and
language), then the text."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from ..errors import SourceError
from ..languages import SUPPORTED, normalise_language
from ..models import Item
from ..yamlfile import LineDict, YamlSyntaxError, parse_yaml, where
from .ids import item_id

_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.DOTALL)
_KEYS = {"title", "date", "link", "regions", "topics", "id", "summary", "language"}


def markdown_to_text(body: str) -> str:
    """Plain text from simple Markdown: links keep their words, emphasis and headings go."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", body)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"^\s{0,3}#{1,6}\s*", "", text, flags=re.MULTILINE)
    text = re.sub(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n\n".join(paragraphs)


def _tags(meta: LineDict, key: str, location: str) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SourceError(
            f"{where(location, meta.line_of(key) + 1)}: '{key}': expected a list of names"
        )
    return tuple(v.strip() for v in value)


def _language(meta: LineDict, location: str) -> str | None:
    value = meta.get("language")
    if value is None:
        return None
    found = normalise_language(value) if isinstance(value, str) else None
    if found is None:
        raise SourceError(
            f"{where(location, meta.line_of('language') + 1)}: 'language': expected one of "
            f"{', '.join(SUPPORTED)}, got {value!r}",
            hint="write the item's language as en, es or fr, or leave it out to have it detected",
        )
    return found


def parse_markdown(text: str, location: str) -> list[Item]:
    match = _FRONT.match(text)
    if not match:
        raise SourceError(
            f"{location}:1: no front matter",
            hint="start the file with '---', then title:, date:, link:, then '---' and the text",
        )
    try:
        meta = parse_yaml(match.group(1), aliases=False)
    except YamlSyntaxError as exc:
        raise SourceError(f"{where(location, exc.line + 1)}: front matter: {exc.problem}") from exc
    if not isinstance(meta, LineDict):
        raise SourceError(f"{location}:2: front matter: expected title:, date: and link: keys")

    def line(key: str) -> int:
        return meta.line_of(key) + 1  # the front matter starts on the file's second line

    for key in meta:
        if key not in _KEYS:
            raise SourceError(
                f"{where(location, line(key))}: unknown front matter key '{key}'",
                hint=f"known keys: {', '.join(sorted(_KEYS))}",
            )
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise SourceError(f"{where(location, line('title'))}: 'title': expected the item's title")
    when = meta.get("date")
    if isinstance(when, datetime):
        when = when.date()
    elif isinstance(when, str):
        try:
            when = date.fromisoformat(when.strip())
        except ValueError:
            when = None
    if not isinstance(when, date):
        raise SourceError(
            f"{where(location, line('date'))}: 'date': expected a date like 2026-11-16"
        )
    link = meta.get("link")
    if link is not None and (
        not isinstance(link, str) or not link.startswith(("http://", "https://"))
    ):
        raise SourceError(f"{where(location, line('link'))}: 'link': expected an http(s) URL")
    summary = meta.get("summary") or markdown_to_text(match.group(2))
    return [
        Item(
            id=str(meta.get("id") or item_id(None, link, when, title)),
            title=" ".join(title.split()),
            date=when,
            summary=str(summary),
            link=link,
            source=location,
            regions=_tags(meta, "regions", location),
            topics=_tags(meta, "topics", location),
            language=_language(meta, location),
        )
    ]


def read_markdown(location: str) -> list[Item]:
    return parse_markdown(Path(location).read_text(encoding="utf-8-sig"), location)
