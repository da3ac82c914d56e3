"""A subscriber's own digest on the web, from the signed link in it: the email in the browser
(GET P/view?token=T), and every story of its period when it held only the most recent
`max_items` (GET P/more?token=T). T is a "digest" token bound to the message (`send.links`);
both pages are built again from the delivery's record, nothing is stored per subscriber."""

from __future__ import annotations

from typing import Any

from flask import Response, g

from ..clock import utcnow
from ..compose.excerpts import excerpt
from ..compose.i18n import N_
from ..compose.render import safe_link
from ..models import Section
from ..send import SentDigest, render_again, sent_digest
from .guards import link_from_token
from .pages import page
from .site import Problem, current_site, open_state
from .wording import _, name_of, ngettext, use_reader_language, words

# The email's own HTML: inline styles and <style> blocks, no scripts, no forms, images over
# https only (a digest has none of its own), never framed.
EMAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_GONE = N_(
    "This digest is no longer kept, or the link belongs to another address. The stories of "
    "your latest digest are in your inbox."
)
_NOT_FOUND = N_("Digest not found")


def _sent() -> SentDigest:
    link, _token = link_from_token("digest")
    site = current_site()
    with open_state() as state:
        delivery = state.delivery_of_message(link.email, link.extra.hex())
        if delivery is None:
            raise Problem(404, _(_NOT_FOUND), _(_GONE))
        sent = sent_digest(state, site.taxonomy, delivery)
    use_reader_language(sent.subscriber.language)  # the language it was sent in
    return sent


def view_view() -> Any:
    """The digest as it was emailed, rendered again (with fresh links)."""
    sent = _sent()
    site = current_site()
    with site.render_lock:
        rendered = render_again(sent, site.renderer, site.settings, site.secret, utcnow())
    if rendered is None:
        raise Problem(404, _(_NOT_FOUND), _(_GONE))
    g.csp = EMAIL_CSP
    return Response(rendered.html, mimetype="text/html")


def _story(tagged: Any, excerpt_words: int) -> dict[str, Any]:
    link = safe_link(tagged.item.link)
    shown = excerpt(tagged.item.summary, excerpt_words, has_link=link is not None)
    return {
        "title": tagged.item.title,
        "date": words().long_date(tagged.item.date),
        "link": link,
        "paragraphs": shown.paragraphs,
        "cut": shown.cut,
    }


def _groups(sections: tuple[Section, ...], excerpt_words: int) -> list[dict[str, Any]]:
    return [
        {
            "title": name_of(s.title),
            "stories": [_story(t, excerpt_words) for t in s.items],
            "groups": _groups(s.sections, excerpt_words),
        }
        for s in sections
    ]


def more_view() -> Any:
    """Every story of the digest's period: those in the email, then the rest."""
    sent = _sent()
    digest = sent.every_story
    if digest is None:
        raise Problem(404, _(_NOT_FOUND), _(_GONE))
    count = len(digest.items)
    return page(
        "stories.html",
        title=ngettext("%(num)s story for you", "%(num)s stories for you", count)
        % {"num": words().number(count)},
        period=words().period(digest.period_start, digest.period_end),
        in_email=len(sent.delivery.item_ids),
        count=count,
        groups=_groups(digest.sections, current_site().settings.excerpt_words),
    )
