"""Render a digest: Jinja2 -> MJML -> HTML (mjml-python), a plain-text part and a subject.

Subscribers with the same items, grouping, preferences and language share one rendering: the
templates see placeholders for the personal fields (name, address, unsubscribe link), which are
filled in afterwards, escaped for HTML in the HTML part. So a template may print
`recipient.name` and test `has_name`, but not transform the personal fields (no
`recipient.name|upper`).

Each digest is written in its reader's language (`i18n`): the templates' strings through
gettext (Jinja2's i18n extension, `{% trans %}` and `_()`), one Jinja2 environment per
language; the headings, dates and numbers by the language's `Localiser`.
"""

from __future__ import annotations

import functools
import html
import sys
import textwrap
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ..caches import memo
from ..errors import TemplateError
from ..languages import SOURCE_LANGUAGE
from ..models import Digest, Section, Subscriber, TaggedItem
from ..selection import flatten, truncate
from ..settings import LIST_NAME
from .i18n import (
    ALL_REGIONS,
    ALL_TOPICS,
    ENGLISH,
    Localiser,
    localisers,
)
from .i18n import format_period as format_period  # re-exported: the web's pages use them
from .i18n import long_date as long_date
from .mime import BodyTemplate, body_template
from .mjml_fragments import FragmentCompiler
from .template_caches import SharedCode, block_cache, remembered_gettext
from .views import SectionView
from .views import safe_link as safe_link  # re-exported: the web's digest pages use it
from .wording import intro, more_period

TEMPLATE_FILES = {"mjml": "digest.mjml.j2", "text": "digest.txt.j2", "subject": "subject.txt.j2"}
CACHE_SIZE = 256  # renderings remembered (about 55 KB each when sending)
PIECE_SIZES_KEPT = 8192  # UTF-8 sizes of the HTML's non-ASCII pieces
GMAIL_CLIP = 102 * 1024  # Gmail clips a message whose HTML passes about 102 KB
HTML_LIMIT = GMAIL_CLIP - 4 * 1024  # what a digest's HTML is kept under, a margin below the clip
_PERSONAL_MARGIN = 1_500  # room left for the name, address and link filled in later

_NAME, _EMAIL, _UNSUB = "@@digest.name@@", "@@digest.email@@", "@@digest.unsubscribe@@"
_REGIONS, _TOPICS = "@@digest.regions@@", "@@digest.topics@@"
_PREFS, _VIEW, _MORE = "@@digest.preferences@@", "@@digest.view@@", "@@digest.more@@"
PLACEHOLDERS = (_NAME, _EMAIL, _UNSUB, _REGIONS, _TOPICS, _PREFS, _VIEW, _MORE)
PREHEADER_CHARS = 110  # inbox previews show 90-140 characters
# After the preheader: invisible characters that fill the inbox preview, so it does not run on
# into the masthead's text (zero-width non-joiner, combining grapheme joiner, no-break space).
PREHEADER_PADDING = Markup("&zwnj;&#847;&nbsp;" * 40)


@dataclass(frozen=True)
class Personal:
    """What differs between subscribers who get the same digest: their name, address and
    preferences, and their own links (those to `digest serve`'s pages empty without it)."""

    name: str
    email: str
    unsubscribe_url: str
    regions: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    preferences_url: str = ""
    view_url: str = ""  # this digest in the browser
    more_url: str = ""  # every story of the period, past `max_items`
    regions_text: str = ""  # the regions as the footer shows them, in the reader's language
    topics_text: str = ""

    @classmethod
    def of(
        cls,
        subscriber: Subscriber,
        unsubscribe_url: str,
        localiser: Localiser | None = None,
        **links: str,
    ) -> Personal:
        """`links`: preferences_url, view_url, more_url. `localiser`: the digest's language
        (None: English)."""
        words = localiser or ENGLISH
        return cls(
            subscriber.name,
            subscriber.email,
            unsubscribe_url,
            subscriber.regions,
            subscriber.topics,
            **links,
            regions_text=words.names_list(subscriber.regions, ALL_REGIONS),
            topics_text=words.names_list(subscriber.topics, ALL_TOPICS),
        )


@dataclass(frozen=True)
class PersonalRendering:
    """One subscriber's email as strings (previews show it; a send uses the bytes)."""

    subscriber: Subscriber
    subject: str
    html: str
    text: str
    mjml: str
    item_ids: tuple[str, ...]
    shown: int  # items shown in the body (fewer than item_ids when the size cap cut it)


@dataclass(frozen=True)
class SharedRendering:
    """One rendering with placeholders, shared by every subscriber of the same profile."""

    subject: str
    mjml: str
    html: str
    text: str
    shown_ids: tuple[str, ...]
    html_pieces: tuple[str, ...] = ()  # the HTML as compiled: frame and sections
    encoded: BodyTemplate | None = None

    @functools.cached_property
    def body(self) -> BodyTemplate:
        """Both parts encoded for the wire once, the personal fields left to fill in."""
        return self.encoded or body_template(
            self.text, self.html_pieces or (self.html,), PLACEHOLDERS
        )

    def for_sending(self) -> SharedRendering:
        """Just what a send needs (about a third of the memory): no MJML, HTML or text."""
        return SharedRendering(self.subject, "", "", "", self.shown_ids, (), self.body)

    def personalise(self, subscriber: Subscriber, personal: Personal) -> PersonalRendering:
        html_values, text_values = html_values_for(personal), text_values_for(personal)
        return PersonalRendering(
            subscriber=subscriber,
            subject=_fill(self.subject, text_values),
            html=_fill(self.html, html_values),
            text=_fill(self.text, text_values),
            mjml=_fill(self.mjml, html_values),
            item_ids=self.shown_ids,
            shown=len(self.shown_ids),
        )


def text_values_for(personal: Personal) -> dict[str, str]:
    return {
        _NAME: personal.name,
        _EMAIL: personal.email,
        _UNSUB: personal.unsubscribe_url,
        _REGIONS: personal.regions_text or ", ".join(personal.regions) or ALL_REGIONS,
        _TOPICS: personal.topics_text or ", ".join(personal.topics) or ALL_TOPICS,
        _PREFS: personal.preferences_url or personal.unsubscribe_url,
        _VIEW: personal.view_url,
        _MORE: personal.more_url,
    }


def html_values_for(personal: Personal) -> dict[str, str]:
    return {key: html.escape(value) for key, value in text_values_for(personal).items()}


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        if key in text:
            text = text.replace(key, value)
    return text


@memo(maxsize=65536)
def wordwrap(
    text: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    """Jinja's `wordwrap`, remembered: the same item is wrapped for many renderings."""
    wrapper = textwrap.TextWrapper(
        width=width,
        break_long_words=break_long_words,
        break_on_hyphens=break_on_hyphens,
        expand_tabs=False,
        replace_whitespace=False,
    )
    joiner = wrapstring or "\n"
    return joiner.join(joiner.join(wrapper.wrap(line)) for line in text.splitlines())


class Renderer:
    """Loads the templates once; renders digests, caching one rendering per profile."""

    def __init__(
        self,
        templates: Path,
        list_name: str = LIST_NAME,
        keep_sources: bool = True,
        excerpt_words: int = 60,
        web_pages: bool = False,
        names: Mapping[str, Mapping[str, str]] | None = None,
        default_language: str = SOURCE_LANGUAGE,
    ) -> None:
        """`names`: the taxonomy's region and topic names per language (`Taxonomy.names`);
        `default_language`: that of subscribers who set none."""
        self.templates = Path(templates)
        self.list_name = list_name
        self.excerpt_words = excerpt_words
        # Whether `digest serve` runs: the digest then links to itself in the browser, and to
        # the web page of every story of the period when it holds only the first `max_items`.
        self.web_pages = web_pages
        # Sending needs only the encoded parts; previews need the MJML, HTML and text too.
        self.keep_sources = keep_sources
        missing = [n for n in TEMPLATE_FILES.values() if not (self.templates / n).is_file()]
        if missing:
            raise TemplateError(
                f"{self.templates}: missing template(s) {', '.join(missing)}",
                hint="point 'templates' in the settings at a folder holding "
                + ", ".join(TEMPLATE_FILES.values()),
            )
        # Every catalog is read now: a broken one stops the run before anything is sent.
        self.localisers = localisers(names, self.templates)
        self.default_language = default_language
        self._envs: dict[str, jinja2.Environment] = {}
        self._code = SharedCode()  # the templates compiled once for every language
        self._templates: dict[tuple[str, str], jinja2.Template] = {}
        self._piece_bytes: dict[str, int] = {}
        self.compiler = FragmentCompiler()
        # Recent renderings, newest last. Subscribers are sent in preference order, so those
        # who share a digest come together and a short memory is enough.
        self._cache: OrderedDict[tuple[Any, ...], SharedRendering] = OrderedDict()
        self.compiled = 0  # MJML compilations done, for progress and benchmarks
        self._last_sections: tuple[Section, ...] | None = None
        self._last_shape: tuple[object, ...] = ()
        self._last_stories: tuple[object, list[TaggedItem], str] = (None, [], "")

    def localiser(self, language: str | None) -> Localiser:
        """The wording of `language` (None: the default language)."""
        code = language or self.default_language
        return self.localisers.get(code) or self.localisers[SOURCE_LANGUAGE]

    def localiser_of(self, subscriber: Subscriber) -> Localiser:
        return self.localiser(subscriber.language)

    def env(self, language: str = SOURCE_LANGUAGE) -> jinja2.Environment:
        """The templates in one language: gettext bound to its catalogs, its dates."""
        env = self._envs.get(language)
        if env is not None:
            return env
        words = self.localiser(language)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.templates)),
            autoescape=lambda name: bool(name and name.endswith(".mjml.j2")),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # one Renderer per run: no stat() of the templates per message
            extensions=["jinja2.ext.i18n"],
            bytecode_cache=self._code,
        )
        env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks read as one line
        env.install_gettext_translations(words.strings, newstyle=True)  # type: ignore[attr-defined]
        env.globals.update(remembered_gettext(words.strings))
        env.filters["longdate"] = words.long_date
        env.filters["number"] = words.number
        env.filters["wordwrap"] = wordwrap
        env.globals["cached"] = block_cache()
        self._envs[language] = env
        return env

    def _template(self, key: str, language: str = SOURCE_LANGUAGE) -> jinja2.Template:
        found = self._templates.get((key, language))
        if found is not None:
            return found
        name = TEMPLATE_FILES[key]
        try:
            found = self._templates[key, language] = self.env(language).get_template(name)
            return found
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"{self.templates / name}:{exc.lineno}: template syntax error: {exc.message}",
                hint="fix the template; nothing was sent",
            ) from exc

    def check(self) -> None:
        """Load every template (syntax errors surface here)."""
        for key in TEMPLATE_FILES:
            self._template(key)

    def _call(self, key: str, context: dict[str, Any]) -> str:
        template = self._template(key, context.get("lang", SOURCE_LANGUAGE))
        try:
            return _render(template, context)
        except Exception as exc:  # anything a template can raise: undefined, type errors...
            line = _template_line(exc, template.filename or "")
            raise TemplateError(
                f"{template.filename}:{line}: {type(exc).__name__}: {exc}",
                hint="fix the template; the variables it may use are listed in the README",
            ) from exc

    def _context(self, digest: Digest, sections: tuple[Section, ...], shown: int) -> dict[str, Any]:
        subscriber = digest.subscriber
        words = self.localiser_of(subscriber)
        entries, first_titles = self._stories(sections)
        count, more = len(entries), len(digest.items) - shown + len(digest.more)
        period = words.period(digest.period_start, digest.period_end)
        subject_context = {
            "count": count,
            "period": period,
            "list_name": self.list_name,
            "lang": words.code,
        }
        subject = " ".join(self._call("subject", subject_context).split())
        return {
            **subject_context,
            "subject": subject,
            "preheader": first_titles,
            "preheader_padding": PREHEADER_PADDING,
            "intro": intro(count, more, subscriber.group_by, words),
            "sections": [self._section_view(s, words) for s in sections],
            "more_count": more,
            "more_url": _MORE if self.web_pages and more else "",
            "more_period": more_period(subscriber.frequency, words),
            "group_by": subscriber.group_by,
            "order": subscriber.order,
            "has_name": bool(subscriber.name),
            "recipient": {"name": _NAME, "email": _EMAIL},
            "unsubscribe_url": _UNSUB,
            "preferences_url": _PREFS,
            "view_url": _VIEW if self.web_pages else "",
            "subscription": {"regions": _REGIONS, "topics": _TOPICS},
        }

    def _stories(self, sections: tuple[Section, ...]) -> tuple[list[TaggedItem], str]:
        """The stories in the order shown and the preheader, the same in every language:
        made once for the readers of all languages, who come one after another."""
        if sections is not self._last_stories[0]:
            entries = flatten(sections)
            self._last_stories = (sections, entries, preheader(e.item.title for e in entries))
        return self._last_stories[1], self._last_stories[2]

    def _section_view(self, section: Section, words: Localiser) -> SectionView:
        return SectionView(section, words, self.excerpt_words)

    def _render_profile(self, digest: Digest, shown: int) -> SharedRendering:
        sections = (
            digest.sections if _fits(digest.sections, shown) else truncate(digest.sections, shown)
        )
        context = self._context(digest, sections, shown)
        mjml_source = self._call("mjml", context)
        try:
            pieces = self.compiler.compile(mjml_source)
        except Exception as exc:  # mrml raises ValueError; keep any other failure readable too
            raise TemplateError(
                f"{self.templates / TEMPLATE_FILES['mjml']}: MJML does not compile: {exc}",
                hint=f"run `digest preview` and read the .mjml file it writes; {exc}",
            ) from exc
        self.compiled += 1
        text = self._call("text", context).strip() + "\n"
        return SharedRendering(
            subject=context["subject"],
            mjml=mjml_source,
            html="".join(pieces) if self.keep_sources else "",  # sending needs the pieces
            text=_at_most_one_blank_line(text),
            shown_ids=tuple(e.id for e in self._stories(sections)[0]),
            html_pieces=pieces,
        )

    def _html_bytes(self, rendered: SharedRendering) -> int:
        """The HTML's size in UTF-8, from its pieces: most recur (a story's section, the
        frame), and encoding 40 KB that hold one non-ASCII character took 16-28 µs."""
        total = 0
        for piece in rendered.html_pieces or (rendered.html,):
            if piece.isascii():  # O(1) in CPython
                total += len(piece)
                continue
            size = self._piece_bytes.get(piece)
            if size is None:
                size = len(piece.encode())
                if len(self._piece_bytes) >= PIECE_SIZES_KEPT:
                    self._piece_bytes.clear()
                self._piece_bytes[piece] = size
            total += size
        return total

    def render_shared(self, digest: Digest) -> SharedRendering:
        """The rendering for this digest's profile, fitted under the HTML size limit."""
        subscriber = digest.subscriber
        # Subscribers whose preferences differ but whose digests come out the same (same
        # sections, same items) share one rendering: their preferences are personal fields.
        if digest.sections is not self._last_sections:  # digests built alike share sections
            self._last_sections, self._last_shape = digest.sections, _shape(digest.sections)
        key = (
            self._last_shape,
            digest.period_start,
            digest.period_end,
            subscriber.group_by,
            subscriber.frequency,
            bool(subscriber.name),
            len(digest.more),
            subscriber.language or self.default_language,
        )
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        budget = HTML_LIMIT - _PERSONAL_MARGIN
        rendered = self._render_profile(digest, len(digest.items))
        if self._html_bytes(rendered) > budget:
            low, high = 1, len(digest.items) - 1  # binary search: the most items that fit
            best = self._render_profile(digest, 1)
            while low <= high:
                middle = (low + high) // 2
                attempt = self._render_profile(digest, middle)
                if self._html_bytes(attempt) <= budget:
                    best, low = attempt, middle + 1
                else:
                    high = middle - 1
            rendered = best
        if not self.keep_sources:
            rendered = rendered.for_sending()
        self._cache[key] = rendered
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return rendered

    def render(self, digest: Digest, personal: Personal) -> PersonalRendering:
        return self.render_shared(digest).personalise(digest.subscriber, personal)


def _render(template: jinja2.Template, context: dict[str, Any]) -> str:
    """`template.render(context)`, the same context made cheaper: Jinja2 copies the globals
    out of a ChainMap for every render (about an eighth of a digest's rendering); a
    template's globals are fixed once its environment is set up, so they are copied once."""
    env = template.environment
    flat = _flat_globals.get(template)
    if flat is None:
        flat = _flat_globals[template] = (dict(template.globals), set(template.globals))
    values, keys = flat
    ctx = env.context_class(env, values | context, template.name, template.blocks)
    ctx.globals_keys = keys  # as Template.new_context sets it (read only by imports)
    try:
        return env.concat(template.root_render_func(ctx))  # type: ignore[attr-defined]
    except Exception:
        env.handle_exception()  # raises it again, its traceback in template lines
        raise


_flat_globals: weakref.WeakKeyDictionary[jinja2.Template, tuple[dict[str, Any], set[str]]] = (
    weakref.WeakKeyDictionary()
)


def _at_most_one_blank_line(text: str) -> str:
    """Runs of blank lines made one (str.replace: a regular expression took 0.2 ms a digest)."""
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def _fits(sections: tuple[Section, ...], keep: int) -> bool:
    """Whether `truncate(sections, keep)` would give sections equal to these: at most `keep`
    items, and no section empty (truncate drops those)."""
    for section in sections:
        if not (section.items or section.sections) or not _fits(section.sections, keep):
            return False
    return sum(s.count for s in sections) <= keep


def _shape(sections: tuple[Section, ...]) -> tuple[object, ...]:
    return tuple((s.title, tuple(t.id for t in s.items), _shape(s.sections)) for s in sections)


def preheader(titles: Iterable[str], limit: int = PREHEADER_CHARS) -> str:
    """The first titles, cut at a word boundary with an ellipsis to fit an inbox preview."""
    text = ""
    for title in titles:
        text = f"{text}; {title}" if text else title
        if len(text) > limit:
            break
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ;,:-") + "…"


def _template_line(exc: BaseException, filename: str) -> int | str:
    """The template line an error was raised on, from Jinja's rewritten traceback."""
    if getattr(exc, "lineno", None):
        return exc.lineno  # type: ignore[attr-defined]
    tb = exc.__traceback__ or sys.exc_info()[2]
    line: int | str = "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
