"""What every request must get past: a signed token for its address, the CSRF check on forms,
and the rate limits."""

from __future__ import annotations

import math
import secrets
import time

from flask import g, request

from ..compose import BadToken, TokenData, make_token, read_link, read_token
from ..compose.i18n import N_
from ..subscribers import valid_email
from .site import (
    CSRF_COOKIE,
    CSRF_LIFETIME,
    FORM_TYPES,
    SIGN_UP_SHAPE,
    TOKEN_SHAPE,
    Problem,
    current_site,
    log,
    origin_of,
)
from .wording import _, ngettext

_EXPIRED_HINTS = {
    "preferences": N_(
        "For your safety this link only works for a while. Open the unsubscribe link at the "
        "bottom of your latest digest: its page has a fresh link to your preferences. Nothing "
        "was changed."
    ),
    "confirm": N_(
        "For your safety this link only works for a while. Sign up again to get a fresh "
        "confirmation email. Nothing was changed."
    ),
}
_EXPIRED = N_("For your safety this link only works for a while. Nothing was changed.")
_DAMAGED = N_("Open it from your email again. Nothing was changed.")


def address_from_token(purpose: str, bound_to: str | None = None) -> tuple[str, str]:
    """The address in the request's `token` for this purpose, and the token; Problem if not.
    A token `bound_to` an id (a sign-up's) was signed for that id too."""
    link, token = link_from_token(purpose, bound_to)
    return link.email, token


def link_from_token(purpose: str, bound_to: str | None = None) -> tuple[TokenData, str]:
    """What the request's `token` was made for (address, and what it is bound to), and the
    token; Problem if it is not valid for this purpose."""
    token = request.args.get("token", "").strip()
    if not token:
        raise Problem(
            400,
            _("This link is incomplete"),
            _(
                "The link has no token. Open it from your email again; if you copied it, copy "
                "all of it. Nothing was changed."
            ),
        )
    if not TOKEN_SHAPE.match(token):
        raise Problem(
            400,
            _("This link is damaged"),
            _(
                "Part of the link is missing or changed. Open it from your email again. "
                "Nothing was changed."
            ),
        )
    try:
        signed_for = purpose if bound_to is None else f"{purpose}|{bound_to}"
        site = current_site()
        link = read_link(site.secret, signed_for, token, legacy_until=site.legacy_until)
    except BadToken as exc:
        if "expired" in str(exc):
            again = {_("Sign up"): current_site().path("subscribe")} if purpose == "confirm" else {}
            raise Problem(
                403, _("This link has expired"), _(_EXPIRED_HINTS.get(purpose, _EXPIRED)), **again
            ) from exc
        if "no longer" in str(exc):
            raise Problem(
                403,
                _("This link is too old"),
                _(
                    "Links in digests sent a while ago no longer work. Use the links in your "
                    "latest digest. Nothing was changed."
                ),
            ) from exc
        if "malformed" in str(exc):
            raise Problem(400, _("This link is damaged"), _(_DAMAGED)) from exc
        raise Problem(
            403,
            _("This link is not valid"),
            _(
                "It was changed, or it belongs to another page. Open the link from your email "
                "again. Nothing was changed."
            ),
        ) from exc
    if not valid_email(link.email):
        raise Problem(403, _("This link is not valid"), _("Nothing was changed."))
    return link, token


def confirmation_link() -> tuple[str, str, str | None]:
    """A confirmation link's address, token and sign-up id (None in a link sent before
    sign-ups had ids); Problem if the link is not valid. The id is signed with the token, so
    changing it invalidates the link."""
    sign_up = request.args.get("signup")
    if sign_up is not None and not SIGN_UP_SHAPE.match(sign_up):
        raise Problem(400, _("This link is damaged"), _(_DAMAGED))
    email, token = address_from_token("confirm", sign_up)
    return email, token, sign_up


def mailbox_key(email: str) -> str:
    """An address as the per-address limits count it: casefolded, without a `+tag` and without
    dots in the local part, since many providers deliver all those spellings to one mailbox
    (`Target+1@example.org`, `t.arget@example.org` and `target@example.org` count as one)."""
    local, _, domain = email.strip().rpartition("@")
    return f"{local.split('+', 1)[0].replace('.', '')}@{domain}".casefold()


def client() -> str:
    return request.remote_addr or "unknown"


def limit(kind: str, key: str, what: str) -> None:
    wait = current_site().limits[kind].hit(key)
    if wait:
        log.warning("rate limit %s hit for %s", kind, key)
        raise too_many(wait, what)


def is_one_click() -> bool:
    """An RFC 8058 POST: `List-Unsubscribe=One-Click` in a form body (or, leniently, raw)."""
    if request.method != "POST" or request.path != current_site().unsubscribe_path:
        return False
    if request.mimetype in FORM_TYPES:
        return request.form.get("List-Unsubscribe", "").strip() == "One-Click"
    return request.get_data(cache=True).strip() == b"List-Unsubscribe=One-Click"


def csrf_token(binding: str) -> str:
    """The hidden field for a form bound to `binding` (its purpose and address)."""
    cookie = getattr(g, "csrf_cookie", None)
    if cookie is None:
        cookie = g.csrf_cookie = g.new_csrf_cookie = secrets.token_urlsafe(24)
    expires = time.time() + CSRF_LIFETIME.total_seconds()
    return make_token(current_site().secret, f"csrf|{cookie}", binding, expires)


def check_form(binding: str) -> None:
    """Refuse a form POST that this site did not render for this purpose and address."""
    site = current_site()
    allowed = {site.public_origin, origin_of(request.host_url)}
    origin = request.headers.get("Origin")
    referer = request.headers.get("Referer")
    came_from = origin if origin is not None else (origin_of(referer) if referer else None)
    if came_from is not None and came_from.lower() not in allowed:
        log.warning("cross-site form post from %s refused", came_from)
        raise Problem(
            403,
            _("This form was sent from another site"),
            _("For your safety only forms on this site are accepted. Nothing was changed."),
        )
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get("csrf", "")
    try:
        ok = bool(cookie and sent) and (read_token(site.secret, f"csrf|{cookie}", sent) == binding)
    except BadToken:
        ok = False
    if not ok:
        raise Problem(
            403,
            _("This form could not be checked"),
            _(
                "Its security code is missing, expired or from another page. Reload the page "
                "(your browser must allow this site's cookie) and try again. Nothing was "
                "changed."
            ),
        )


def too_many(wait: float, what: str) -> Problem:
    seconds = max(1, math.ceil(wait))
    if seconds < 120:
        later = ngettext("%(num)s second", "%(num)s seconds", seconds) % {"num": seconds}
    else:
        minutes = math.ceil(seconds / 60)
        later = ngettext("%(num)s minute", "%(num)s minutes", minutes) % {"num": minutes}
    return Problem(
        429,
        _("Too many requests"),
        _("%(what)s Please try again in %(later)s. Nothing was changed.")
        % {"what": what, "later": later},
        retry_after=seconds,
    )
