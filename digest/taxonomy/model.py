"""The parsed taxonomy: its regions and topics in order, and the lexicon that finds them."""

from __future__ import annotations

from dataclasses import dataclass, field

from .lexicon import ALL, Hit, Lexicon
from .text import tokenise

DEFAULT_CONTEXT_WINDOW = 10


@dataclass(frozen=True)
class Taxonomy:
    regions: tuple[str, ...]
    topics: tuple[str, ...]
    # the taxonomy file's own terms plus the names of the countries each region covers; the
    # full lexicon (cities, demonyms, Spanish and French) is `lexicon`
    region_terms: dict[str, tuple[str, ...]] = field(repr=False)
    topic_terms: dict[str, tuple[str, ...]] = field(repr=False)  # terms that need no context
    source: str = ""
    lexicon: Lexicon = field(default_factory=Lexicon, repr=False, compare=False)
    context_window: int = DEFAULT_CONTEXT_WINDOW
    # per language (folded): the words the context window does not count, so that it spans
    # as much of a sentence in Spanish and French (more articles and prepositions) as in English
    function_words: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    region_of: dict[str, str] = field(default_factory=dict, repr=False)  # ISO code -> region
    # How readers of other languages see the regions' and topics' names in their digest and
    # on the web: language -> name -> its name in that language (missing: the name itself).
    names: dict[str, dict[str, str]] = field(default_factory=dict, repr=False, compare=False)
    # What the tags depend on (the file, the place data, the tagging code): tags stored with
    # another fingerprint are made again.
    fingerprint: str = field(default="", compare=False)

    def scan(self, text: str, language: str | None = None) -> tuple[list[Hit], list[int]]:
        """The terms found in `text`, and for each of its words (and its end) how many words
        the context window counts before it."""
        tokens = tokenise(text)
        skip = self.function_words.get(language or ALL, frozenset())
        positions, counted = [], 0
        for key in tokens.keys:
            positions.append(counted)
            counted += key not in skip
        positions.append(counted)
        return self.lexicon.scan(tokens, language), positions
