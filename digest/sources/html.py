"""A feed's HTML as clean text paragraphs, by html-text (Zyte's, on lxml): the tree is parsed,
what a reader of a digest has no use for is cut out of it, and html-text lays out the rest.

Cut out: images and what only frames them (figures, pictures, media, embeds, forms: a tracking
pixel is an image like any other), scripts and styles (html-text's cleaner), and the
boilerplate blogs append to a feed's copy of a post: "Continue reading", "Read more", "[…]"
links, and WordPress's "The post X appeared first on Y." line.
"""

from __future__ import annotations

import re

import html_text
import lxml.etree
import lxml.html

from ..caches import memo

# Elements dropped with everything inside them.
_DROPPED = (
    "img",
    "picture",
    "figure",
    "svg",
    "video",
    "audio",
    "iframe",
    "object",
    "embed",
    "canvas",
    "map",
    "noscript",
    "form",
    "button",
    "template",
)
# A link (or a paragraph) whose whole text starts with one of these is boilerplate.
_BOILERPLATE_STARTS = (
    "continue reading",
    "keep reading",
    "read more",
    "read the rest",
    "read the full",
    "read the whole",
    "did you click to read",
    "read full",
    "(more",
    "more…",
    "more...",
    "[…]",
    "[...]",
    "…",
)
_SHORT = 12  # words: longer text that starts "Read more" is the article's own
_BLOCKS = frozenset({*html_text.DOUBLE_NEWLINE_TAGS, "li", "dd", "dt", "tr"})
_LINES = frozenset(html_text.NEWLINE_TAGS) - _BLOCKS


def _words(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split()).casefold()


def _is_boilerplate(text: str) -> bool:
    if text.startswith(_BOILERPLATE_STARTS) and len(text.split()) <= _SHORT:
        return True
    # WordPress: "The post <a>Title</a> appeared first on <a>Site</a>."
    return text.startswith("the post ") and " appeared first on " in text


def _drop(element: lxml.html.HtmlElement) -> None:
    """Remove an element but keep the text that follows it (its tail)."""
    if element.getparent() is not None:
        element.drop_tree()


def _cleaned(tree: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    for element in list(tree.iter(*_DROPPED)):
        _drop(element)
    for element in list(tree.iter("a")):
        if _is_boilerplate(_words(element)):
            _drop(element)
    for element in list(tree.iter("p", "div", "span")):
        if _is_boilerplate(_words(element)):
            _drop(element)
    return tree


# Control characters (which a tolerant read of a feed lets through) and non-characters.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


@memo(maxsize=4096)
def html_to_text(markup: str) -> str:
    """Plain text paragraphs (separated by a blank line) from a feed's HTML: entities decoded,
    tags, images, scripts, boilerplate links and stray control characters dropped."""
    markup = CONTROL_CHARACTERS.sub("", markup or "")
    if not markup.strip():
        return ""
    if "<" not in markup and "&" not in markup:
        return "\n\n".join(" ".join(p.split()) for p in markup.split("\n\n") if p.strip())
    try:
        tree = html_text.parse_html(markup)
    except (lxml.etree.ParserError, ValueError):
        return " ".join(markup.split())
    text = html_text.extract_text(_cleaned(tree), newline_tags=_LINES, double_newline_tags=_BLOCKS)
    paragraphs = (" ".join(p.split()) for p in text.split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)
