"""What the templates see of a digest's sections and stories.

A section's view names the section (`block_key`) so that `{% call cached(sub) %}` can reuse
the block rendered for it before; its stories are looked at only when the block is rendered.
"""

from __future__ import annotations

import functools
import re
from types import SimpleNamespace
from typing import Any

from ..caches import memo
from ..models import Section
from .excerpts import excerpt
from .i18n import Localiser


def safe_link(link: str | None) -> str | None:
    """Only http(s) links reach the email: a feed cannot slip in javascript: or data: URLs."""
    if link and re.match(r"^https?://[^\s<>\"']+$", link):
        return link
    return None


class SectionView:
    """What a template sees of a section. Its stories are looked at only when a block that
    shows them is rendered: `{% call cached(sub) %}` blocks mostly come from the cache."""

    def __init__(self, section: Section, words: Localiser, excerpt_words: int) -> None:
        self.title = words.name(section.title)
        self.section = section
        self._words, self._excerpt_words = words, excerpt_words

    @functools.cached_property
    def block_key(self) -> tuple[object, ...]:
        """What the section shows, apart from the language: its title and its stories, by
        identity (a run's stories are the same objects in every digest; `cached` keeps them
        alive while their key is kept, so an id cannot be taken by another story)."""
        return (
            self.section.title,
            tuple(map(id, self.section.items)),
            tuple(v.block_key for v in self.sections),
        )

    @functools.cached_property
    def items(self) -> list[SimpleNamespace]:
        return [entry(t, self._excerpt_words) for t in self.section.items]

    @functools.cached_property
    def sections(self) -> list[SectionView]:
        return [SectionView(s, self._words, self._excerpt_words) for s in self.section.sections]


@memo(maxsize=4096)
def entry(tagged: Any, excerpt_words: int) -> SimpleNamespace:
    """What a template sees of one story (the same in every digest that carries it)."""
    link = safe_link(tagged.item.link)
    shown = excerpt(tagged.item.summary, excerpt_words, has_link=link is not None)
    return SimpleNamespace(
        item=tagged.item,
        link=link,
        paragraphs=list(shown.paragraphs),
        cut=shown.cut,
        regions=tagged.regions,
        topics=tagged.topics,
    )
