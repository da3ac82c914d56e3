"""What the templates see of a digest's sections and stories.

A section's view names the section (`block_key`) so that `{% call cached(sub) %}` can reuse
the block rendered for it before; its stories are looked at only when the block is rendered.
"""

from __future__ import annotations

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
    shows them is rendered: `{% call cached(sub) %}` blocks mostly come from the cache.
    (Properties remembered by hand: Python 3.11's cached_property takes a lock each time.)"""

    def __init__(self, section: Section, words: Localiser, excerpt_words: int) -> None:
        self.title = words.name(section.title)
        self.section = section
        self._words, self._excerpt_words = words, excerpt_words
        self._items: list[SimpleNamespace] | None = None
        self._sections: list[SectionView] | None = None

    @property
    def block_key(self) -> tuple[object, ...]:
        """What the section shows, apart from the language: its title and its stories, by
        identity (a run's stories are the same objects in every digest; `cached` keeps them
        alive while their key is kept, so an id cannot be taken by another story)."""
        section = self.section
        nested = tuple(v.block_key for v in self.sections) if section.sections else ()
        return (section.title, tuple(map(id, section.items)), nested)

    @property
    def items(self) -> list[SimpleNamespace]:
        if self._items is None:
            self._items = [entry(t, self._excerpt_words) for t in self.section.items]
        return self._items

    @property
    def sections(self) -> list[SectionView]:
        if self._sections is None:
            words, excerpt_words = self._words, self._excerpt_words
            self._sections = [SectionView(s, words, excerpt_words) for s in self.section.sections]
        return self._sections


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
