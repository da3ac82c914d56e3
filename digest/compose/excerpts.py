"""What a digest shows of one story: an excerpt, never the whole article (pure functions).

A feed that carries whole articles (`content:encoded`, Atom `content`) would otherwise fill a
screen per story and push the digest past Gmail's clipping size. So:

- a summary of up to `SHORT` times `words` is shown whole (a feed's own summary, the office's
  listing);
- a longer one is cut after the paragraphs and sentences that come nearest to `words`, and the
  story's link reads "Read the full story";
- a story with no link keeps its whole summary up to `NO_LINK` times `words` (there is nowhere
  to read the rest), cut at a sentence past that, with an ellipsis.

Words are counted as written: a run of Chinese or Japanese characters, which has no spaces,
counts one word per two characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SHORT = 1.5  # a summary up to 1.5 x `words` is shown whole
NO_LINK = 4  # a story without a link keeps up to 4 x `words`
ELLIPSIS = "…"
# A sentence ends at . ! ? or … (with any closing quote or bracket) before a space and a
# capital, a digit or an opening mark; or at a CJK full stop, ! or ?.
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+(?=[\"“‘'(¿¡]?[A-Z0-9À-ÞΑ-ΩА-Я])|(?<=[。！？])"
)


@dataclass(frozen=True)
class Excerpt:
    paragraphs: tuple[str, ...]
    cut: bool  # something was left out: the link says "Read the full story"


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F") and char.isalpha()


def word_count(text: str) -> int:
    """Words as a reader counts them, for text with or without spaces between words."""
    count = 0
    for token in text.split():
        wide = sum(1 for c in token if _is_wide(c))
        count += max(1, (wide + 1) // 2)
    return count


def paragraphs_of(summary: str) -> list[str]:
    return [p for p in (" ".join(p.split()) for p in summary.split("\n\n")) if p]


def sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s and s.strip()]


def _cut_words(text: str, limit: int) -> str:
    """Text longer than `limit` words with no sentence end near: cut between words."""
    tokens = text.split()
    if len(tokens) > 1:
        return " ".join(tokens[:limit]).rstrip(",;:") + ELLIPSIS
    kept, count = [], 0
    for char in text:  # one long run of CJK characters
        count += 1 if _is_wide(char) else 0
        if count > 2 * limit:
            break
        kept.append(char)
    return "".join(kept) + ELLIPSIS


def _take(paragraphs: list[str], limit: int) -> list[str]:
    """The opening paragraphs, the last one cut at the sentence end nearest `limit` words."""
    taken: list[str] = []
    total = 0
    for paragraph in paragraphs:
        size = word_count(paragraph)
        if total + size <= limit:
            taken.append(paragraph)
            total += size
            continue
        if total >= limit * 0.75:  # near enough: end at the paragraph before
            break
        kept: list[str] = []
        for sentence in sentences(paragraph):
            size = word_count(sentence)
            over = total + size - limit
            # Take the sentence if it ends nearer `limit` than stopping before it would.
            if over > 0 and (kept or taken) and over > limit - total:
                break
            if over > limit:  # one enormous sentence: cut it between words
                kept.append(_cut_words(sentence, limit - total))
                total = limit
                break
            kept.append(sentence)
            total += size
        if kept:
            taken.append(" ".join(kept))
        break
    return taken or [_cut_words(paragraphs[0], limit)]


def excerpt(summary: str, words: int, has_link: bool) -> Excerpt:
    """What a digest shows of a story's summary (see the module's docstring)."""
    paragraphs = paragraphs_of(summary)
    total = sum(word_count(p) for p in paragraphs)
    if has_link and total <= words * SHORT:
        return Excerpt(tuple(paragraphs), False)
    limit = words if has_link else words * NO_LINK
    if total <= limit:
        return Excerpt(tuple(paragraphs), False)
    taken = _take(paragraphs, limit)
    if not has_link and not taken[-1].endswith(ELLIPSIS):
        taken[-1] += " " + ELLIPSIS
    return Excerpt(tuple(taken), True)
