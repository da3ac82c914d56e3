"""Every term the tagger knows, looked up by folded phrase, and the scan of a text.

A scan walks the words left to right; at each word it tries the longest phrase first, so
"Dominican Republic" wins over "Dominica" and "voluntary return" over "return". A term
counts only in its language (or in every language) and only in the case it demands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .text import Tokens, fold

# everyday: a phrase that holds a term but means something else ("se desplazan": they
# travel, not "desplazan": they displace); read as one phrase, it counts for nothing
Kind = Literal["place", "topic", "context", "everyday"]
# any: any case; capital: a capital first letter (place names); exact: capitals as written
# (US, EU, WHO); lower: lower case unless it starts a sentence or the word is in capitals
# (Spanish demonyms, so "a Cubano sandwich" is not Cuban)
Case = Literal["any", "capital", "exact", "lower"]
ALL = "*"


@dataclass(frozen=True, slots=True)
class Entry:
    kind: Kind
    name: str  # the topic; for a place, "" (see regions)
    term: str  # as written in the taxonomy or the data
    language: str = ALL
    case: Case = "any"
    needs_context: bool = False
    regions: tuple[str, ...] = ()  # a place's candidate regions: one unless ambiguous
    countries: tuple[str, ...] = ()  # a place's candidate ISO codes, when known
    # languages where this place name is also an everyday word: not at a sentence's start
    everyday_in: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    start: int  # token index
    end: int
    written: str
    entries: tuple[Entry, ...]


def is_acronym(term: str) -> bool:
    """Short capitals (US, EU, WHO, RCM) are matched as written: "us" and "who" are words."""
    letters = [c for c in term if c.isalpha()]
    return 2 <= len(letters) <= 3 and all(c.isupper() for c in letters)


@dataclass
class Lexicon:
    table: dict[str, list[Entry]] = field(default_factory=dict)
    longest: dict[str, int] = field(default_factory=dict)  # first word -> longest phrase

    def add(self, entry: Entry, key: str | None = None) -> None:
        key = key if key is not None else fold(entry.term)
        if not key:
            return
        self.table.setdefault(key, []).append(entry)
        first, length = key.split(" ", 1)[0], key.count(" ") + 1
        if self.longest.get(first, 0) < length:
            self.longest[first] = length

    def replace(self, key: str, keep) -> None:
        """Keep only the entries under `key` for which keep(entry) is true."""
        if key in self.table:
            self.table[key] = [e for e in self.table[key] if keep(e)]

    def scan(self, tokens: Tokens, language: str | None) -> list[Hit]:
        hits: list[Hit] = []
        keys, i, count = tokens.keys, 0, len(tokens.keys)
        while i < count:
            longest = self.longest.get(keys[i], 0)
            for n in range(min(longest, count - i), 0, -1):
                entries = self.table.get(" ".join(keys[i : i + n]))
                if not entries:
                    continue
                written = tokens.written[i : i + n]
                fitting = tuple(
                    e
                    for e in entries
                    if (language is None or e.language in (ALL, language))
                    and _case_fits(e, written, tokens.sentence_start[i], language)
                )
                if fitting:
                    hits.append(Hit(i, i + n, tokens.phrase(i, i + n), fitting))
                    i += n
                    break
            else:
                i += 1
        return hits


def _case_fits(
    entry: Entry, written: tuple[str, ...], sentence_start: bool, language: str | None
) -> bool:
    if entry.case == "any":
        return True
    first = written[0]
    if entry.case == "capital":
        if sentence_start and entry.everyday_in and (language in entry.everyday_in or not language):
            return False  # "Cortes de agua...": a word that only looks like Cortés
        return first[:1].isupper()
    if entry.case == "exact":
        return "".join(written) == "".join(c for c in entry.term if c.isalnum())
    # lower: a Spanish demonym in lower case, in capitals, or opening a sentence
    return first.islower() or first.isupper() or sentence_start
