"""`digest serve`: the subscriber's side on the web.

Routes, where P is the folder of `unsubscribe_url`'s path ("" for https://example.org/unsubscribe):

    POST <unsubscribe path>?token=T  body List-Unsubscribe=One-Click: RFC 8058, unsubscribes, 200
    GET  <unsubscribe path>?token=T  a page with an Unsubscribe button; a GET never unsubscribes
    POST <unsubscribe path>?token=T  that button (CSRF-checked), then back to the page
    GET, POST P/preferences?token=T  the preference centre
    GET, POST P/subscribe            sign-up: stores it and emails a confirmation link
    GET, POST P/confirm?token=T      the confirmation link's page and its Confirm button
    GET  P/healthz                   "ok", for the proxy's health checks

Flask 3 on waitress: every request is a few small SQLite writes (and for a sign-up one SMTP
hand-over), which a thread pool serves plainly, with no async layer around blocking calls.
Waitress is pure Python, made for production, and believes the HTTPS proxy's X-Forwarded-*
headers only when `web.trusted_proxy` names it (so the per-client limits see real clients).

Protection, in brief: tokens are HMAC-signed per purpose (`tokens.py`); every form this
service renders carries a CSRF token signed over a random cookie and the form's purpose and
address (double submit), and Origin/Referer must be this site when the browser sends them;
the RFC 8058 POST alone needs no CSRF token, since mail providers send only the URL's token.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime, make_msgid
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import Flask, Response, current_app, g, redirect, render_template, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from .delivery import open_sender, send_with_retries
from .errors import DeliveryError, DigestError
from .message import encode_address, encode_text_header, quoted_printable
from .models import Subscriber
from .overrides import (
    Effective,
    Overrides,
    address_key,
    describe,
    subscriber_settings,
    web_changes,
)
from .pipeline import list_name
from .settings import Settings
from .signing import DkimSigner, load_signer
from .state import State, utcnow
from .subscribers import FREQUENCIES, GROUPINGS, load_subscribers, valid_email
from .taxonomy import Taxonomy, load_taxonomy
from .tokens import BadToken, make_token, read_token

log = logging.getLogger("digest.web")

PREFERENCES_LIFETIME = timedelta(days=7)  # preference links are minted by this service
CSRF_LIFETIME = timedelta(hours=12)
CSRF_COOKIE = "digest_csrf"
MAX_BODY = 64 * 1024
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{2,1000}\.[A-Za-z0-9_-]{2,100}$")
_COOKIE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Problem(Exception):
    """A request that cannot be served: shown as a small page with this status."""

    def __init__(
        self, status: int, title: str, text: str, retry_after: int | None = None, **links: str
    ) -> None:
        super().__init__(title)
        self.status, self.title, self.text, self.retry_after = status, title, text, retry_after
        self.links = links


# -- rate limits --------------------------------------------------------------------------------
class SlidingWindow:
    """At most `limit` hits per `period` seconds for each key, in memory (one process).

    `hit(key)` counts a hit and returns 0, or returns the seconds to wait (counting nothing)."""

    def __init__(
        self,
        limit: int,
        period: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit, self.period, self.clock, self.max_keys = limit, period, clock, max_keys
        self.hits: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def hit(self, key: str) -> float:
        now = self.clock()
        with self.lock:
            window = self.hits.get(key)
            if window is None:
                if len(self.hits) >= self.max_keys:
                    self._sweep(now)
                window = self.hits[key] = deque()
            while window and window[0] <= now - self.period:
                window.popleft()
            if len(window) >= self.limit:
                return max(window[0] + self.period - now, 0.001)
            window.append(now)
            return 0.0

    def _sweep(self, now: float) -> None:
        """Forget keys with no hit in the window; if all are busy, the oldest half."""
        stale = [k for k, w in self.hits.items() if not w or w[-1] <= now - self.period]
        for key in stale:
            del self.hits[key]
        if len(self.hits) >= self.max_keys:
            for key in sorted(self.hits, key=lambda k: self.hits[k][-1])[: self.max_keys // 2]:
                del self.hits[key]


def _too_many(wait: float, what: str) -> Problem:
    seconds = max(1, math.ceil(wait))
    later = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    return Problem(
        429,
        "Too many requests",
        f"{what} Please try again in {later}. Nothing was changed.",
        retry_after=seconds,
    )


# -- the site -----------------------------------------------------------------------------------
@dataclass
class Site:
    """What every request needs: settings, secret, taxonomy, paths and the rate limits."""

    settings: Settings
    secret: bytes
    taxonomy: Taxonomy
    list_name: str
    unsubscribe_path: str
    prefix: str
    public_origin: str
    limits: dict[str, SlidingWindow]
    signer: DkimSigner | None = None
    _file: tuple[tuple[int, int], list[Subscriber]] | None = None
    _file_lock: threading.Lock = field(default_factory=threading.Lock)

    def path(self, name: str, **query: str) -> str:
        path = self.unsubscribe_path if name == "unsubscribe" else f"{self.prefix}/{name}"
        return path + (f"?{urlencode(query)}" if query else "")

    def file_subscribers(self) -> list[Subscriber]:
        """subscribers.yaml, read again whenever the staff change it."""
        path = self.settings.subscribers
        try:
            info = path.stat()
            key = (info.st_mtime_ns, info.st_size)
            with self._file_lock:
                if self._file is None or self._file[0] != key:
                    self._file = (key, load_subscribers(path, self.taxonomy))
                return self._file[1]
        except (OSError, DigestError) as exc:
            log.error("cannot read %s: %s", path, exc)
            raise Problem(
                503,
                "Please try again a little later",
                "The subscriber list is being updated right now. Nothing was changed.",
            ) from exc

    def file_subscriber(self, email: str) -> Subscriber | None:
        key = address_key(email)
        return next((s for s in self.file_subscribers() if address_key(s.email) == key), None)

    def preferences_token(self, email: str) -> str:
        expires = time.time() + PREFERENCES_LIFETIME.total_seconds()
        return make_token(self.secret, "preferences", email, expires)


def _site() -> Site:
    return current_app.extensions["digest"]  # type: ignore[no-any-return]


def _open_state() -> State:
    return State(_site().settings.state)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@cache
def timezone_choices() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """IANA zones for the select, the Americas first; legacy aliases (US/..., EST5EDT) left out."""
    zones = sorted(
        z
        for z in available_timezones()
        if "/" in z and z.split("/")[0] in _ZONE_AREAS and not z.startswith("Etc/")
    )
    americas = tuple(z for z in zones if z.startswith("America/"))
    return (("The Americas", americas), ("Elsewhere", tuple(z for z in zones if z not in americas)))


_ZONE_AREAS = {"Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe"}
_ZONE_AREAS |= {"Indian", "Pacific"}


# -- tokens, CSRF, limits -----------------------------------------------------------------------
_EXPIRED_HINTS = {
    "unsubscribe": "",
    "preferences": "Open the unsubscribe link at the bottom of your latest digest: its page "
    "has a fresh link to your preferences.",
    "confirm": "Sign up again to get a fresh confirmation email.",
}


def _address_from_token(purpose: str) -> tuple[str, str]:
    """The address in the request's `token` for this purpose, and the token; Problem if not."""
    token = request.args.get("token", "").strip()
    if not token:
        raise Problem(
            400,
            "This link is incomplete",
            "The link has no token. Open it from your email again; if you copied it, copy "
            "all of it. Nothing was changed.",
        )
    if not _TOKEN_SHAPE.match(token):
        raise Problem(
            400,
            "This link is damaged",
            "Part of the link is missing or changed. Open it from your email again. "
            "Nothing was changed.",
        )
    try:
        email = read_token(_site().secret, purpose, token)
    except BadToken as exc:
        if "expired" in str(exc):
            raise Problem(
                403,
                "This link has expired",
                f"For your safety this link only works for a while. {_EXPIRED_HINTS[purpose]} "
                "Nothing was changed.",
                **({"Sign up": _site().path("subscribe")} if purpose == "confirm" else {}),
            ) from exc
        if "malformed" in str(exc):
            raise Problem(
                400, "This link is damaged", "Open it from your email again. Nothing was changed."
            ) from exc
        raise Problem(
            403,
            "This link is not valid",
            "It was changed, or it belongs to another page. Open the link from your email "
            "again. Nothing was changed.",
        ) from exc
    if not valid_email(email):
        raise Problem(403, "This link is not valid", "Nothing was changed.")
    return email, token


def _client() -> str:
    return request.remote_addr or "unknown"


def _limit(kind: str, key: str, what: str) -> None:
    wait = _site().limits[kind].hit(key)
    if wait:
        log.warning("rate limit %s hit for %s", kind, key)
        raise _too_many(wait, what)


def _is_one_click() -> bool:
    """An RFC 8058 POST: `List-Unsubscribe=One-Click` in a form body (or, leniently, raw)."""
    if request.method != "POST" or request.path != _site().unsubscribe_path:
        return False
    if request.mimetype in _FORM_TYPES:
        return request.form.get("List-Unsubscribe", "").strip() == "One-Click"
    return request.get_data(cache=True).strip() == b"List-Unsubscribe=One-Click"


def csrf_token(binding: str) -> str:
    """The hidden field for a form bound to `binding` (its purpose and address)."""
    cookie = getattr(g, "csrf_cookie", None)
    if cookie is None:
        cookie = g.csrf_cookie = g.new_csrf_cookie = secrets.token_urlsafe(24)
    expires = time.time() + CSRF_LIFETIME.total_seconds()
    return make_token(_site().secret, f"csrf|{cookie}", binding, expires)


def _check_form(binding: str) -> None:
    """Refuse a form POST that this site did not render for this purpose and address."""
    site = _site()
    allowed = {site.public_origin, _origin(request.host_url)}
    origin = request.headers.get("Origin")
    referer = request.headers.get("Referer")
    came_from = origin if origin is not None else (_origin(referer) if referer else None)
    if came_from is not None and came_from.lower() not in allowed:
        log.warning("cross-site form post from %s refused", came_from)
        raise Problem(
            403,
            "This form was sent from another site",
            "For your safety only forms on this site are accepted. Nothing was changed.",
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
            "This form could not be checked",
            "Its security code is missing, expired or from another page. Reload the page "
            "(your browser must allow this site's cookie) and try again. Nothing was changed.",
        )


# -- the preference form ------------------------------------------------------------------------
def _form_values(subscriber: Subscriber) -> dict[str, Any]:
    return {**subscriber_settings(subscriber), "timezone": subscriber.timezone or ""}


def _read_preferences(form: MultiDict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings a form asks for (in the stored form) and the problems, by field."""
    taxonomy = _site().taxonomy
    errors: dict[str, str] = {}
    name = " ".join(form.get("name", "").split())
    if len(name) > 100:
        errors["name"] = "Please keep the name under 100 characters."

    def names(field_name: str, known: tuple[str, ...]) -> list[str]:
        chosen = form.getlist(field_name)
        unknown = [c for c in chosen if c not in known]
        if unknown:
            errors[field_name] = f"Unknown choice: {', '.join(unknown[:3])}."
        return [k for k in known if k in chosen]

    regions = names("regions", taxonomy.regions)
    topics = names("topics", taxonomy.topics)
    group_by = form.get("group_by", "region")
    if group_by not in GROUPINGS:
        errors["group_by"] = "Choose region or topic."
    frequency = form.get("frequency", "weekly")
    if frequency not in FREQUENCIES:
        errors["frequency"] = "Choose daily, weekly or monthly."
    timezone = form.get("timezone", "").strip()
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = "Choose a timezone from the list."
    values = {
        "name": name,
        "regions": regions,
        "topics": topics,
        "group_by": group_by,
        "frequency": frequency,
        "timezone": timezone or None,
    }
    return values, errors


def _page(template: str, code: int = 200, **context: Any) -> tuple[str, int]:
    site = _site()
    return render_template(
        template,
        list_name=site.list_name,
        regions=site.taxonomy.regions,
        topics=site.taxonomy.topics,
        timezones=timezone_choices(),
        office_timezone=site.settings.schedule.timezone,
        csrf_token=csrf_token,
        **context,
    ), code


def _message(status: int, title: str, text: str, links: dict[str, str] | None = None) -> Any:
    return _page("message.html", status, title=title, text=text, links=links or {})


def _effective(state: State, email: str, file_subscriber: Subscriber | None) -> Effective | None:
    key = address_key(email)
    found = describe(
        [file_subscriber] if file_subscriber else [], state, _site().taxonomy, only=key
    )
    return found[0] if found else None


# -- views --------------------------------------------------------------------------------------
def unsubscribe_view() -> Any:
    site = _site()
    if _is_one_click():
        try:
            email, _ = _address_from_token("unsubscribe")
        except Problem:
            # Mail providers send many one-click POSTs from few addresses: only bad ones count.
            _limit("posts", _client(), "Too many requests came from your network.")
            raise
        with _open_state() as state:
            changed = Overrides(state).unsubscribe(email, "one-click", utcnow())
        log.info("one-click unsubscribe %s%s", email, "" if changed else " (already)")
        return _message(
            200, "You are unsubscribed", f"{email} will receive no more digests from us."
        )
    email, token = _address_from_token("unsubscribe")
    binding = f"unsubscribe:{address_key(email)}"
    if request.method == "POST":
        _check_form(binding)
        _limit("changes", address_key(email), "This address was changed many times just now.")
        with _open_state() as state:
            changed = Overrides(state).unsubscribe(email, "unsubscribe-page", utcnow())
        log.info("unsubscribe (page) %s%s", email, "" if changed else " (already)")
        return redirect(site.path("unsubscribe", token=token), 303)
    with _open_state() as state:
        record = Overrides(state).record(email)
    return _page(
        "unsubscribe.html",
        email=email,
        unsubscribed=record is not None and record.unsubscribed_at is not None,
        binding=binding,
        action=site.path("unsubscribe", token=token),
        preferences=site.path("preferences", token=site.preferences_token(email)),
    )


_DONE = {
    "saved": "Your preferences are saved. The next digest follows them.",
    "unsubscribed": "You are unsubscribed: no more digests will be sent to you.",
    "resubscribed": "Welcome back: you will receive the digest again.",
    "confirmed": "Thank you, your subscription is confirmed. Your first digest comes with "
    "the next mailing.",
}


def preferences_view() -> Any:
    site = _site()
    email, token = _address_from_token("preferences")
    key = address_key(email)
    binding = f"preferences:{key}"
    action_url = site.path("preferences", token=token)
    file_subscriber = site.file_subscriber(email)
    errors: dict[str, str] = {}
    values: dict[str, Any] | None = None
    if request.method == "POST":
        _check_form(binding)
        _limit("changes", key, "This address was changed many times just now.")
        action = request.form.get("action", "")
        now = utcnow()
        with _open_state() as state:
            overrides = Overrides(state)
            if action == "save":
                wanted, errors = _read_preferences(request.form)
                if not errors:
                    record = overrides.record(email)
                    current = record.prefs if record else {}
                    overrides.set_preferences(
                        email, web_changes(file_subscriber, wanted, current), "preferences", now
                    )
                    log.info("preferences saved for %s", email)
                    return redirect(site.path("preferences", token=token, done="saved"), 303)
                values = {**wanted, "timezone": wanted["timezone"] or ""}
            elif action == "unsubscribe":
                overrides.unsubscribe(email, "preferences", now)
                log.info("unsubscribe (preferences) %s", email)
                return redirect(site.path("preferences", token=token, done="unsubscribed"), 303)
            elif action == "resubscribe":
                in_file = file_subscriber is not None
                overrides.resubscribe(email, "preferences", now, in_file=in_file)
                log.info("resubscribe %s", email)
                return redirect(site.path("preferences", token=token, done="resubscribed"), 303)
            else:
                raise Problem(400, "Unknown action", "Nothing was changed.")
    with _open_state() as state:
        effective = _effective(state, email, file_subscriber)
    subscriber = effective.subscriber if effective else Subscriber(email=email)
    status = effective.status if effective else "none"
    return _page(
        "preferences.html",
        400 if errors else 200,
        email=email,
        status=status,
        values=values or _form_values(subscriber),
        errors=errors,
        done=_DONE.get(request.args.get("done", "")) if not errors else None,
        binding=binding,
        action=action_url,
    )


def subscribe_view() -> Any:
    site = _site()
    binding = "subscribe"
    if request.method == "GET":
        return _page(
            "subscribe.html",
            values=_form_values(Subscriber(email="")) | {"email": ""},
            errors={},
            binding=binding,
            action=site.path("subscribe"),
        )
    _check_form(binding)
    wanted, errors = _read_preferences(request.form)
    email = request.form.get("email", "").strip()
    if not valid_email(email):
        errors["email"] = "Enter an email address like name@example.org."
    if errors:
        return _page(
            "subscribe.html",
            400,
            values={**wanted, "timezone": wanted["timezone"] or "", "email": email},
            errors=errors,
            binding=binding,
            action=site.path("subscribe"),
        )
    _limit(
        "signups", address_key(email), "We sent this address several confirmation emails just now."
    )
    with _open_state() as state:
        Overrides(state).sign_up(email, wanted, utcnow(), client=_client())
    try:
        send_confirmation(site, email, wanted["name"])
    except DeliveryError as exc:
        log.error("confirmation email to %s failed: %s", email, exc.message)
        raise Problem(
            503,
            "We could not send the email",
            "Our mail server did not take the confirmation email just now. Please try again "
            "in a few minutes.",
        ) from exc
    log.info("sign-up %s: confirmation sent", email)
    return _message(
        200,
        "Check your inbox",
        f"We sent a confirmation link to {email}. Open it and press Confirm to start "
        f"receiving the digest. The link works for {_lifetime(site.settings.web.confirm_within)}."
        " If nothing arrives, check your spam folder.",
    )


def confirm_view() -> Any:
    site = _site()
    email, token = _address_from_token("confirm")
    key = address_key(email)
    binding = f"confirm:{key}"
    if request.method == "POST":
        _check_form(binding)
        _limit("changes", key, "This address was changed many times just now.")
        file_subscriber = site.file_subscriber(email)
        with _open_state() as state:
            confirmed = Overrides(state).confirm(email, utcnow(), _client(), file_subscriber)
        log.info("confirm %s%s", email, "" if confirmed else " (nothing waiting)")
        preferences = site.preferences_token(email)
        return redirect(site.path("preferences", token=preferences, done="confirmed"), 303)
    with _open_state() as state:
        record = Overrides(state).record(email)
        file_subscriber = site.file_subscriber(email)
        effective = _effective(state, email, file_subscriber)
    if record is None or record.pending is None:
        if effective is not None and effective.active:
            return _message(
                200,
                "Already confirmed",
                f"{email} already receives the digest.",
                {"Your preferences": site.path("preferences", token=site.preferences_token(email))},
            )
        return _message(
            404,
            "Nothing to confirm",
            "There is no sign-up waiting for this address. Sign up again to get a new link.",
            {"Sign up": site.path("subscribe")},
        )
    pending = record.pending
    return _page(
        "confirm.html",
        email=email,
        values=pending | {"timezone": pending.get("timezone") or ""},
        binding=binding,
        action=site.path("confirm", token=token),
    )


def health_view() -> Any:
    return Response("ok\n", mimetype="text/plain")


# -- the confirmation email ---------------------------------------------------------------------
def _lifetime(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return f"{max(1, round(hours * 60))} minutes"
    if hours <= 72:
        return f"{round(hours)} hours"
    return f"{round(hours / 24)} days"


def confirmation_message(site: Site, email: str, name: str, url: str, now: datetime) -> bytes:
    """A short plain-text email with the confirmation link."""
    sender = site.settings.sender_address
    text = "\n".join(
        [
            f"Hello {name}," if name else "Hello,",
            "",
            f"Someone, probably you, asked to receive {site.list_name} at {email}.",
            "To confirm, open this link and press Confirm "
            f"(it works for {_lifetime(site.settings.web.confirm_within)}):",
            "",
            url,
            "",
            "If you did not ask for this, ignore this email: nothing will be sent to you.",
            "",
            f"-- {site.list_name}",
            "",
        ]
    )
    headers = [
        ("From", encode_address(sender.display_name, sender.addr_spec)),
        ("To", encode_address(name, email)),
        ("Subject", encode_text_header(f"Please confirm your subscription to {site.list_name}")),
        ("Date", format_datetime(now)),
        ("Message-ID", make_msgid(domain=sender.domain)),
        ("Auto-Submitted", "auto-generated"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", "quoted-printable"),
    ]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("ascii")
    return head + b"\r\n" + quoted_printable(text)


def send_confirmation(site: Site, email: str, name: str) -> None:
    settings = site.settings
    expires = time.time() + settings.web.confirm_within.total_seconds()
    token = make_token(site.secret, "confirm", email, expires)
    url = site.public_origin + site.path("confirm", token=token)
    data = confirmation_message(site, email, name, url, utcnow())
    if site.signer is not None:
        data = site.signer.sign(data)
    sender = open_sender(settings.delivery)
    smtp = settings.delivery.smtp
    try:
        # The person is waiting for the page: a short retry, not the send's long backoff.
        send_with_retries(
            sender,
            settings.sender_address.addr_spec,
            email,
            data,
            min(smtp.retries, 1),
            min(smtp.retry_backoff, 1.0),
        )
    finally:
        sender.close()


# -- the app ------------------------------------------------------------------------------------
def _before() -> None:
    g.csp_nonce = secrets.token_urlsafe(16)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    g.csrf_cookie = cookie if _COOKIE_SHAPE.match(cookie) else None
    site = _site()
    if request.path == site.path("healthz") or _is_one_click():
        return
    _limit("requests", _client(), "Too many requests came from your network.")
    if request.method == "POST":
        _limit("posts", _client(), "Too many forms were sent from your network.")


def _after(response: Response) -> Response:
    nonce = getattr(g, "csp_nonce", "")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # Tokens are in our URLs: never send them to another site in a Referer.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    new_cookie = getattr(g, "new_csrf_cookie", None)
    if new_cookie:
        site = _site()
        response.set_cookie(
            CSRF_COOKIE,
            new_cookie,
            httponly=True,
            samesite="Lax",
            secure=site.public_origin.startswith("https:") or request.is_secure,
            path=site.prefix or "/",
        )
    return response


def _problem_page(problem: Problem) -> Any:
    body, status = _message(problem.status, problem.title, problem.text, problem.links)
    response = current_app.make_response((body, status))
    if problem.retry_after is not None:
        response.headers["Retry-After"] = str(problem.retry_after)
    return response


def _http_error(error: HTTPException) -> Any:
    titles = {404: "Page not found", 405: "Not allowed here", 413: "Too much data"}
    status = error.code or 500
    return _message(
        status,
        titles.get(status, error.name),
        "Use the links in your digest, or the sign-up page. Nothing was changed.",
        {"Sign up": _site().path("subscribe")},
    )


def _server_error(error: Exception) -> Any:
    log.exception("unexpected error", exc_info=error)
    return _message(
        500,
        "Something went wrong",
        "We could not finish that. Please try again in a few minutes.",
    )


def create_app(settings: Settings) -> Flask:
    """The WSGI app for these settings. Reads the token secret (creating it on first use, as
    a send does) and makes the state's tables."""
    taxonomy = load_taxonomy(settings.taxonomy)
    with State(settings.state) as state:
        secret, _ = state.token_secret(settings.token_secret_env)
        Overrides(state)
    signer, warning = load_signer(settings.dkim)
    if warning:
        log.warning("%s", warning)
    parts = urlsplit(settings.unsubscribe_url)
    unsubscribe_path = parts.path or "/"
    web = settings.web
    site = Site(
        settings=settings,
        secret=secret,
        taxonomy=taxonomy,
        list_name=list_name(settings),
        unsubscribe_path=unsubscribe_path,
        prefix=unsubscribe_path.rsplit("/", 1)[0],
        public_origin=_origin(settings.unsubscribe_url),
        limits={
            "requests": SlidingWindow(web.requests_per_minute, 60),
            "posts": SlidingWindow(web.posts_per_minute, 60),
            "signups": SlidingWindow(web.signups_per_hour, 3600),
            "changes": SlidingWindow(web.changes_per_hour, 3600),
        },
        signer=signer,
    )
    app = Flask(
        __name__, template_folder=str(Path(__file__).with_name("web_templates")), static_folder=None
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["digest"] = site
    app.jinja_env.globals["csp_nonce"] = lambda: getattr(g, "csp_nonce", "")
    views: list[tuple[str, str, Callable[[], Any], list[str]]] = [
        (unsubscribe_path, "unsubscribe", unsubscribe_view, ["GET", "POST"]),
        (site.path("preferences"), "preferences", preferences_view, ["GET", "POST"]),
        (site.path("subscribe"), "subscribe", subscribe_view, ["GET", "POST"]),
        (site.path("confirm"), "confirm", confirm_view, ["GET", "POST"]),
        (site.path("healthz"), "healthz", health_view, ["GET"]),
    ]
    for rule, endpoint, view, methods in views:
        app.add_url_rule(rule, endpoint, view, methods=methods)
    app.before_request(_before)
    app.after_request(_after)
    app.register_error_handler(Problem, _problem_page)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _server_error)
    return app


def serve(settings: Settings, host: str, port: int, threads: int = 8) -> None:
    """Run the app on waitress until interrupted."""
    import waitress

    app = create_app(settings)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "threads": threads,
        "ident": "digest",
        "max_request_body_size": MAX_BODY,
    }
    proxy = settings.web.trusted_proxy
    if proxy:
        options |= {
            "trusted_proxy": proxy,
            "trusted_proxy_count": 1,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"},
            "clear_untrusted_proxy_headers": True,
        }
    waitress.serve(app, **options)
