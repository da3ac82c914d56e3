"""Words as the tagger compares them: folded (no case, no accents) and split into tokens.

Folding makes "Panamá" equal "Panama", "Haïti" equal "Haiti" and "Côte d’Ivoire" equal
"Cote d'Ivoire" (any apostrophe, any hyphen: both split words). Tokens keep what was written,
so a rule can still ask for a capital letter or for capitals as written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..caches import memo

_WORD = re.compile(r"[^\W_]+")
_SENTENCE_END = frozenset(".!?:;\n\"'«»“”¿¡—–-(")


@memo(maxsize=65_536)
def fold_word(word: str) -> str:
    """One word without case or accents: "México" -> "mexico", "Haïtiens" -> "haitiens"."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(text: str) -> str:
    """A phrase as a lookup key: folded words joined by one space."""
    return " ".join(fold_word(w) for w in _WORD.findall(text))


@dataclass(frozen=True, slots=True)
class Tokens:
    """The words of a text: as written, folded, and whether each starts a sentence."""

    written: tuple[str, ...]
    keys: tuple[str, ...]
    sentence_start: tuple[bool, ...]
    spans: tuple[tuple[int, int], ...] = ()
    text: str = ""

    def phrase(self, start: int, end: int) -> str:
        """Tokens start..end as the text wrote them ("Côte d’Ivoire", "capacity-building")."""
        return self.text[self.spans[start][0] : self.spans[end - 1][1]]


def tokenise(text: str) -> Tokens:
    written: list[str] = []
    starts: list[bool] = []
    spans: list[tuple[int, int]] = []
    previous_end = 0
    for match in _WORD.finditer(text):
        gap = text[previous_end : match.start()].strip(" \t")
        starts.append(not written or bool(gap) and gap[-1] in _SENTENCE_END)
        written.append(match.group(0))
        spans.append(match.span())
        previous_end = match.end()
    keys = tuple(fold_word(w) for w in written)
    return Tokens(tuple(written), keys, tuple(starts), tuple(spans), text)


def spanish_forms(word: str) -> list[str]:
    """A Spanish demonym's four forms: ruso -> rusa, rusos, rusas; francés -> francesa,
    franceses; hondureño -> hondureña; nicaragüense -> nicaragüenses; iraquí -> iraquíes."""
    if len(word) < 4:
        return [word]
    bare = _strip_last_accent(word)
    if word.endswith("o"):
        return [word, word[:-1] + "a", word + "s", word[:-1] + "as"]
    if re.search(r"([éá]n|és)$", word):
        return [word, bare + "a", bare + "es", bare + "as"]
    if word.endswith(("a", "e")):
        return [word, word + "s"]
    if word.endswith(("í", "ú")):
        return [word, word + "es", word + "s"]
    if word.endswith(("l", "r")):  # español -> española, españoles
        return [word, word + "a", word + "es", word + "as"]
    return [word, word + "es"]


def french_forms(word: str) -> list[str]:
    """A French demonym's forms: russe -> russes; français -> française(s); haïtien ->
    haïtienne(s), haïtiens; turc -> turque(s); grec -> grecque(s)."""
    if len(word) < 4:
        return [word]
    if word.endswith("ec"):
        return [word, word + "s", word + "que", word + "ques"]
    if word.endswith("c"):
        return [word, word + "s", word[:-1] + "que", word[:-1] + "ques"]
    if word.endswith("e"):
        return [word, word + "s"]
    if word.endswith(("s", "x")):
        return [word, word + "e", word + "es"]
    if word.endswith(("ien", "éen", "on")):
        return [word, word + "s", word + "ne", word + "nes"]
    return [word, word + "s", word + "e", word + "es"]


def english_forms(word: str) -> list[str]:
    """Russian -> Russians, Thai -> Thais; Chinese, Swiss, French, British stay as they are."""
    if re.search(r"(ese|s|sh|ch|x|y)$", word) and not word.endswith("Czech"):
        return [word]
    return [word, word + "s"]


INFLECT = {"en": english_forms, "es": spanish_forms, "fr": french_forms}


def _strip_last_accent(word: str) -> str:
    for accented, plain in (("é", "e"), ("á", "a"), ("í", "i"), ("ó", "o"), ("ú", "u")):
        index = word.rfind(accented)
        if index >= len(word) - 3:
            return word[:index] + plain + word[index + 1 :]
    return word
