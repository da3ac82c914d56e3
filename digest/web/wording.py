"""The language of each page of `digest serve`, and its strings.

A page is written in the language `?lang=` names (when the project has it); else, on a page
for one subscriber (unsubscribe, preferences, confirmation), in that subscriber's language once
their link is read; else in the first of the browser's Accept-Language the project has; else in
`default_language`. Strings go through the project's catalogs (`compose.i18n`): `_()` here
and in the page templates, `{% trans %}` in them too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from babel import Locale
from flask import Flask, g, request

from ..caches import memo
from ..compose.i18n import Localiser
from ..languages import reader_language, reader_languages
from .site import current_site

LANG_PARAM = "lang"


def choose_language() -> None:
    """Before each request: `?lang=`, else the browser's language, else the default."""
    asked = reader_language(request.args.get(LANG_PARAM))
    g.language_asked = asked
    g.language = asked or browser_language() or current_site().settings.default_language


def browser_language() -> str | None:
    """The first of the browser's languages, by preference, that the project has: "fr-CA,
    en;q=0.5" is French (werkzeug's `best_match` would take the exact "en" first)."""
    for tag, quality in request.accept_languages:  # highest quality first
        found = reader_language(tag) if quality > 0 else None
        if found:
            return found
    return None


def use_reader_language(language: str | None) -> None:
    """A page for one subscriber is in their language, unless `?lang=` asked for another."""
    if language and g.get("language_asked") is None:
        g.language = reader_language(language) or g.language


def current_language() -> str:
    return str(g.get("language") or current_site().settings.default_language)


def words(language: str | None = None) -> Localiser:
    localisers = current_site().localisers
    return localisers.get(language or current_language()) or localisers["en"]


def _(message: str) -> str:
    """`message` in the page's language."""
    return words().gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return words().ngettext(singular, plural, count)


def name_of(english: str) -> str:
    """A region's or topic's name in the page's language."""
    return words().name(english)


@memo(maxsize=16)
def language_name(code: str) -> str:
    """A language's name in itself: English, Español, Français."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def language_links() -> list[dict[str, Any]]:
    """This page in each language: the footer's links (the token kept, `lang` set)."""
    query = {k: v for k, v in request.args.items() if k != LANG_PARAM}
    current = current_language()
    return [
        {
            "code": code,
            "name": language_name(code),
            "url": request.path + "?" + urlencode({**query, LANG_PARAM: code}),
            "current": code == current,
        }
        for code in reader_languages()
    ]


def with_language(path: str) -> str:
    """`path` keeping the `?lang=` this page was asked in, so a form's answer stays in it."""
    asked = g.get("language_asked")
    if not asked:
        return path
    return f"{path}{'&' if '?' in path else '?'}{urlencode({LANG_PARAM: asked})}"


def install(app: Flask) -> None:
    """The page templates' gettext (`_()`, `{% trans %}`) in each request's language."""
    env = app.jinja_env
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(_, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["name_of"] = name_of
    env.globals.update(
        page_language=current_language,
        name_of=name_of,
        language_name=language_name,
        language_links=language_links,
        reader_languages=reader_languages,
    )
