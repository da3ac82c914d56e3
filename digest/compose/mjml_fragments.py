"""Compile MJML one top-level body element at a time, remembering each element's HTML.

MRML renders each child of `<mj-body>` (an `mj-section`, an `mj-wrapper`...) independently of
its neighbours, so a digest's HTML is the document's frame (head, body wrapper) with the
children's HTML in between. A story's section is the same in every digest that carries it,
so it is compiled once per run instead of once per digest.

This rests on MRML's output, not on a promise: the first documents of each run are also
compiled whole and compared byte for byte, and at the first difference the compiler goes back
to compiling whole documents for the rest of the run.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from mjml import mjml2html

_OPEN, _CLOSE = "DIGESTFRAGMENTSTART", "DIGESTFRAGMENTEND"
_OPEN_ELEMENT, _CLOSE_ELEMENT = f"<mj-raw>{_OPEN}</mj-raw>", f"<mj-raw>{_CLOSE}</mj-raw>"
_BODY_OPEN = re.compile(r"<mj-body\b[^>]*>")
# The elements that can stand at the top of a body, and nest in one another (a wrapper holds
# sections). Tags inside them (mj-column, mj-text...) need not be looked at.
_TAG = re.compile(r"<(/?)mj-(?:section|wrapper|hero|raw|include)\b([^>]*)>")
# Title and preview change from digest to digest. MRML copies their text as it is into the
# frame, so a frame is compiled with slots in their place and each digest's text goes there.
_PER_DIGEST_HEAD = re.compile(r"<(mj-title|mj-preview)>(.*?)</\1>", re.DOTALL)
_SLOTS = {"mj-title": "DIGESTTITLESLOT", "mj-preview": "DIGESTPREVIEWSLOT"}
_SLOT = re.compile("(" + "|".join(_SLOTS.values()) + ")")
VERIFY_FIRST = 3  # documents compiled both ways at the start of a run
FRAGMENTS_KEPT = 4096
# MRML writes `mj-preview` as 1px white text, which spam filters score as hidden text
# (SpamAssassin's HTML_FONT_LOW_CONTRAST) and screen readers read out. It is hidden instead
# as email developers do: not displayed, no height, hidden from Outlook and screen readers.
_MRML_PREVIEW = (
    '<div style="display:none;font-size:1px;color:#ffffff;line-height:1px;max-height:0px;'
    'max-width:0px;opacity:0;overflow:hidden;">'
)
HIDDEN_PREVIEW = (
    '<div style="display:none;max-height:0;max-width:0;overflow:hidden;mso-hide:all;" '
    'aria-hidden="true">'
)


# MRML zeroes the font size of its layout cells (`font-size:0px;`, so no white space shows
# between columns), which spam filters read as text too small to read (SpamAssassin's
# __HTML_FONT_TINY_01, scored when the relay has no reverse DNS). `font-size:0;` is the same
# to every client and is not taken for hidden text.
_ZERO_FONT, _ZERO_FONT_UNITLESS = "font-size:0px;", "font-size:0;"


def compile_whole(source: str) -> str:
    """MRML's HTML, its preview hidden and its zero font sizes written as above. Every
    compile comes through here, so the pieces compiled a fragment at a time still match a
    whole compile byte for byte."""
    compiled = mjml2html(source, disable_comments=True)
    return compiled.replace(_MRML_PREVIEW, HIDDEN_PREVIEW, 1).replace(
        _ZERO_FONT, _ZERO_FONT_UNITLESS
    )


def split_body(source: str) -> tuple[str, list[str], str] | None:
    """(everything up to and with `<mj-body ...>`, its top-level children, the rest), or None
    when the body holds anything else at the top (text, an unbalanced tag)."""
    opening = _BODY_OPEN.search(source)
    end = source.rfind("</mj-body>")
    if opening is None or end < opening.end():
        return None
    inner = source[opening.end() : end]
    children: list[str] = []
    depth, start, position = 0, 0, 0
    for tag in _TAG.finditer(inner):
        closing, self_closing = tag.group(1), tag.group(2).endswith("/")
        if depth == 0:
            if closing or inner[position : tag.start()].strip():
                return None
            start = tag.start()
        if not self_closing:
            depth += -1 if closing else 1
        if depth == 0:
            children.append(inner[start : tag.end()])
            position = tag.end()
    if depth or inner[position:].strip():
        return None
    return source[: opening.end()], children, source[end:]


class FragmentCompiler:
    """`compile(source)` returns HTML pieces whose concatenation is the compiled document."""

    def __init__(self) -> None:
        self.fragments: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.frames: dict[tuple[str, str], tuple[str, str]] = {}  # per head: one or two a run
        self.frame_pieces: dict[str, tuple[str, ...]] = {}  # each frame cut at its slots
        self.trusted: bool | None = None  # None: still comparing with whole compiles
        self.compared = 0
        self.compiles = 0  # calls into MRML, for benchmarks

    def _filled(self, frame: str, texts: dict[str, str]) -> tuple[str, ...]:
        """The frame's pieces with each slot's text as a piece of its own, so the pieces
        around it are the same in every digest, the same strings (encoded once, see
        `mime.body_template`)."""
        split = self.frame_pieces.get(frame)
        if split is None:
            split = self.frame_pieces[frame] = tuple(p for p in _SLOT.split(frame) if p)
        return tuple(texts.get(piece, piece) for piece in split)

    def _mrml(self, source: str) -> str:
        self.compiles += 1
        return compile_whole(source)

    def _neutral_frame(self, head: str, child: str, postamble: str) -> tuple[str, str] | None:
        key = (head, postamble)
        if key not in self.frames:
            marked = self._marked(head, child, postamble)
            if marked is None:
                return None
            self.frames[key] = (marked[0], marked[2])
        return self.frames[key]

    def _marked(self, preamble: str, child: str, postamble: str) -> tuple[str, str, str] | None:
        """Compile one child between two markers: (the frame before it, its HTML, after it).
        The head's CSS depends on the columns used, so the frame comes from a real child."""
        html = self._mrml(preamble + _OPEN_ELEMENT + child + _CLOSE_ELEMENT + postamble)
        if html.count(_OPEN) != 1 or html.count(_CLOSE) != 1:
            return None
        before, rest = html.split(_OPEN)
        fragment, after = rest.split(_CLOSE)
        return before, fragment, after

    def _fragment(
        self, head: str, child: str, postamble: str, frame: tuple[str, str]
    ) -> str | None:
        key = (head, child)
        cached = self.fragments.get(key)
        if cached is not None:
            self.fragments.move_to_end(key)
            return cached
        marked = self._marked(head, child, postamble)
        if marked is None or (marked[0], marked[2]) != frame:
            return None  # this child changes the head (a new kind of column): no shortcut
        self.fragments[key] = marked[1]
        if len(self.fragments) > FRAGMENTS_KEPT:
            self.fragments.popitem(last=False)
        return marked[1]

    def compile(self, source: str) -> tuple[str, ...]:
        if self.trusted is False:
            return (self._mrml(source),)
        parts = split_body(source)
        if parts is None:
            return (self._mrml(source),)
        preamble, children, postamble = parts
        if not children:
            return (self._mrml(_joined(parts)),)
        return self._pieces(preamble, children, postamble) or (self._mrml(_joined(parts)),)

    def _pieces(self, preamble: str, children: list[str], postamble: str) -> tuple[str, ...]:
        """The pieces, or () when MRML must compile the whole document."""
        # Sections and the frame are compiled under a head with slots for title and preview.
        texts: dict[str, str] = {}
        head = _PER_DIGEST_HEAD.sub(lambda m: _slot(m, texts), preamble)
        neutral = self._neutral_frame(head, children[0], postamble)
        if neutral is None:
            return ()
        before: tuple[str, ...]
        after: tuple[str, ...]
        plain = all("<" not in t and not _SLOT.search(t) for t in texts.values())
        if not plain or any(head.count(slot) > 1 for slot in texts):
            framed = self._marked(preamble, children[0], postamble)  # markup: MRML decides
            if framed is None:
                return ()
            before, after = (framed[0],), (framed[2],)
        else:
            before, after = self._filled(neutral[0], texts), self._filled(neutral[1], texts)
        fragments = [self._fragment(head, child, postamble, neutral) for child in children]
        if any(f is None for f in fragments):
            return ()
        pieces = (*before, *(f for f in fragments if f is not None), *after)
        if self.trusted is None:
            whole = self._mrml(_joined((preamble, children, postamble)))
            if "".join(pieces) != whole:
                self.trusted = False
                return (whole,)
            self.compared += 1
            self.trusted = True if self.compared >= VERIFY_FIRST else None
        return pieces


def _joined(parts: tuple[str, list[str], str]) -> str:
    """The document again from `split_body`'s parts. White space between the body's children
    is dropped in both ways of compiling, so they agree (MRML would copy it into the HTML)."""
    preamble, children, postamble = parts
    return preamble + "".join(children) + postamble


def _slot(match: re.Match[str], texts: dict[str, str]) -> str:
    tag, text = match.group(1), match.group(2)
    texts[_SLOTS[tag]] = text
    return f"<{tag}>{_SLOTS[tag]}</{tag}>"
