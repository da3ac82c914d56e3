"""`digest serve`: the subscriber's side on the web.

Routes, where P is the folder of `unsubscribe_url`'s path ("" for https://example.org/unsubscribe):

    POST <unsubscribe path>?token=T  body List-Unsubscribe=One-Click: RFC 8058, unsubscribes, 200
    GET  <unsubscribe path>?token=T  a page with an Unsubscribe button; a GET never unsubscribes
    POST <unsubscribe path>?token=T  that button (CSRF-checked), then back to the page
    GET, POST P/preferences?token=T  the preference centre
    GET, POST P/subscribe            sign-up: stores it and emails a confirmation link
    GET, POST P/confirm?token=T&signup=S  the confirmation link's page and its Confirm button;
                                     T is signed for the sign-up S, and no other
    GET  P/view?token=D              the digest the link came in, in the browser (D: a digest
                                     token bound to that message)
    GET  P/more?token=D              every story of that digest's period, past `max_items`
    GET  P/healthz                   "ok", for the proxy's health checks
    POST P/webhooks/ses              Amazon SES bounces and complaints over SNS (`webhooks`)
    POST P/webhooks/bounce           a generic signed JSON bounce or complaint (`webhooks`)

Flask 3 on waitress: every request is a few small SQLite writes (and for a sign-up one SMTP
hand-over), which a thread pool serves plainly, with no async layer around blocking calls.
Waitress is pure Python, made for production, and believes the HTTPS proxy's X-Forwarded-*
headers only when `web.trusted_proxy` names it (so the per-client limits see real clients).

Protection, in brief: tokens are opaque and signed per purpose (`compose/links.py`); every form this
service renders carries a CSRF token signed over a random cookie and the form's purpose and
address (double submit), and Origin/Referer must be this site when the browser sends them;
the RFC 8058 POST alone needs no CSRF token, since mail providers send only the URL's token.
Digest's own errors (a state that cannot be used) are 503 with Retry-After; anything else
unexpected is a 500 with its traceback in the log.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from ..compose import load_signer
from ..compose.i18n import N_, localisers
from ..errors import DigestError
from ..settings import Settings
from ..state import State, suppressions
from ..taxonomy import load_taxonomy
from .digests import more_view, view_view
from .guards import client, is_one_click, limit
from .pages import (
    confirm_view,
    health_view,
    message_page,
    preferences_view,
    subscribe_view,
    unsubscribe_view,
)
from .ratelimit import SlidingWindow
from .site import (
    COOKIE_SHAPE,
    CSRF_COOKIE,
    LEGACY_LINKS_AT_LEAST,
    MAX_BODY,
    RETRY_LATER,
    Problem,
    Site,
    current_site,
    log,
    origin_of,
)
from .sns import SnsTrust
from .webhooks import generic_view, make_webhooks, ses_view
from .wording import _, choose_language, current_language
from .wording import install as install_wording


def _before() -> None:
    choose_language()
    g.csp_nonce = secrets.token_urlsafe(16)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    g.csrf_cookie = cookie if COOKIE_SHAPE.match(cookie) else None
    site = current_site()
    if request.path == site.path("healthz") or is_one_click():
        return
    if request.path in (site.path("webhooks/ses"), site.path("webhooks/bounce")):
        return  # providers post many from few hosts: only refused ones count (`webhooks`)
    limit("requests", client(), _("Too many requests came from your network."))
    if request.method == "POST":
        limit("posts", client(), _("Too many forms were sent from your network."))


def _after(response: Response) -> Response:
    nonce = getattr(g, "csp_nonce", "")
    response.headers["Content-Security-Policy"] = getattr(g, "csp", None) or (
        f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # Tokens are in our URLs: never send them to another site in a Referer.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = current_language()
    response.headers["Vary"] = "Accept-Language"
    new_cookie = getattr(g, "new_csrf_cookie", None)
    if new_cookie:
        site = current_site()
        response.set_cookie(
            CSRF_COOKIE,
            new_cookie,
            httponly=True,
            samesite="Lax",
            secure=site.public_origin.startswith("https:") or request.is_secure,
            path=site.prefix or "/",
        )
    return response


def problem_page(problem: Problem) -> Any:
    body, status = message_page(problem.status, problem.title, problem.text, problem.links)
    response = current_app.make_response((body, status))
    if problem.retry_after is not None:
        response.headers["Retry-After"] = str(problem.retry_after)
    return response


_HTTP_TITLES = {404: N_("Page not found"), 405: N_("Not allowed here"), 413: N_("Too much data")}


def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    return message_page(
        status,
        _(_HTTP_TITLES[status]) if status in _HTTP_TITLES else error.name,
        _("Use the links in your digest, or the sign-up page. Nothing was changed."),
        {_("Sign up"): current_site().path("subscribe")},
    )


def _unavailable(error: DigestError) -> Any:
    """One of digest's own errors (the state emptied, damaged, read-only or full; a file being
    rewritten): something staff must fix or wait for, not a bug. The log says what; the reader
    is asked to come back (Retry-After, which mail providers honour for one-click POSTs)."""
    log.error("cannot serve %s %s: %s", request.method, request.path, error)
    return problem_page(
        Problem(
            503,
            _("Please try again a little later"),
            _(
                "This service cannot reach its records just now. Nothing was changed. Please "
                "try again in a few minutes."
            ),
            retry_after=RETRY_LATER,
        )
    )


def _server_error(error: Exception) -> Any:
    log.exception("unexpected error", exc_info=error)
    return message_page(
        500,
        _("Something went wrong"),
        _("We could not finish that. Please try again in a few minutes."),
    )


def create_app(settings: Settings, *, sns_trust: SnsTrust | None = None) -> Flask:
    """The WSGI app for these settings. Reads the token secret (creating it on first use, as
    a send does) and makes the state's tables. `sns_trust` is for tests only: where SNS
    certificates may come from (default: AWS's SNS hosts, see `sns`)."""
    taxonomy = load_taxonomy(settings.taxonomy)
    with State(settings.state) as state:
        secret, _ = state.token_secret(settings.token_secret_env)
        with state.transaction():  # PostgreSQL: this host's journal lines a restore lost
            suppressions.restore_lines(suppressions.journal_of(state))
        opaque_since = state.opaque_links_since()
    legacy_until = (
        (opaque_since + max(settings.lookback, LEGACY_LINKS_AT_LEAST)).timestamp()
        if opaque_since is not None
        else None
    )
    signer, warning = load_signer(settings.dkim)
    if warning:
        log.warning("%s", warning)
    languages = localisers(taxonomy.names)  # the project's catalogs, each checked now
    parts = urlsplit(settings.unsubscribe_url)
    unsubscribe_path = parts.path or "/"
    web = settings.web
    site = Site(
        settings=settings,
        secret=secret,
        taxonomy=taxonomy,
        list_name=settings.list_name,
        unsubscribe_path=unsubscribe_path,
        prefix=unsubscribe_path.rsplit("/", 1)[0],
        public_origin=origin_of(settings.unsubscribe_url),
        limits={
            "requests": SlidingWindow(web.requests_per_minute, 60),
            "posts": SlidingWindow(web.posts_per_minute, 60),
            "signups": SlidingWindow(web.signups_per_hour, 3600),
            "changes": SlidingWindow(web.changes_per_hour, 3600),
            "confirmations": SlidingWindow(web.confirmations_per_hour, 3600),  # one key: "all"
        },
        signer=signer,
        legacy_until=legacy_until,
        localisers=languages,
    )
    app = Flask(
        __name__, template_folder=str(Path(__file__).with_name("templates")), static_folder=None
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["digest"] = site
    app.extensions["digest.webhooks"] = make_webhooks(settings, sns_trust)
    app.jinja_env.globals["csp_nonce"] = lambda: getattr(g, "csp_nonce", "")
    install_wording(app)
    views: list[tuple[str, str, Callable[[], Any], list[str]]] = [
        (unsubscribe_path, "unsubscribe", unsubscribe_view, ["GET", "POST"]),
        (site.path("preferences"), "preferences", preferences_view, ["GET", "POST"]),
        (site.path("subscribe"), "subscribe", subscribe_view, ["GET", "POST"]),
        (site.path("confirm"), "confirm", confirm_view, ["GET", "POST"]),
        (site.path("view"), "view", view_view, ["GET"]),
        (site.path("more"), "more", more_view, ["GET"]),
        (site.path("healthz"), "healthz", health_view, ["GET"]),
        (site.path("webhooks/ses"), "webhook_ses", ses_view, ["POST"]),
        (site.path("webhooks/bounce"), "webhook_bounce", generic_view, ["POST"]),
    ]
    for rule, endpoint, view, methods in views:
        app.add_url_rule(rule, endpoint, view, methods=methods)
    app.before_request(_before)
    app.after_request(_after)
    app.register_error_handler(Problem, problem_page)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DigestError, _unavailable)
    app.register_error_handler(Exception, _server_error)
    return app


# Waitress reads every request whole in its one event loop before a worker thread sees it, so a
# client that stalls mid-request holds a connection, never a thread; the limits are on those.
# - connection_limit: waitress stops accepting at this many open connections (its default, 100,
#   let 120 stalled bodies shut everyone out). An idle connection costs one file descriptor and
#   a few KB; a thousand keep the loop's work per pass small and are far more than the proxy's
#   per-client limit lets one client hold, or than this service's real traffic needs.
# - asyncore_use_poll: select(), waitress's default, cannot watch descriptors above 1023.
# - channel_timeout: a connection that sends nothing for this long is closed, half a request or
#   not. 30 s is ample for a form (a few hundred bytes) on a slow mobile link, and frees the
#   slots of a stalled attack in half a minute instead of two; the proxy's own timeouts and
#   buffering do the rest (README: the subscribers' web service).
# - cleanup_interval: how often waitress looks for such connections (default 30 s).
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT = 30
CLEANUP_INTERVAL = 5
SPARE_FILES = 128  # for the state, its journal, SMTP connections and logs besides


def connection_limit(wanted: int = CONNECTION_LIMIT) -> int:
    """`wanted`, after raising the process's open-file limit toward its hard limit to hold that
    many connections (a service manager's usual soft limit is 1024); less if it cannot."""
    try:
        import resource
    except ImportError:  # not on a Unix
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %s: %s", soft, exc)
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("open-file limit %s: serving at most %s connections", soft, soft - SPARE_FILES)
        return max(10, soft - SPARE_FILES)
    return wanted


def serve(settings: Settings, host: str, port: int, threads: int = 8) -> None:
    """Run the app on waitress until interrupted."""
    make_server(settings, host, port, threads).run()


def make_server(
    settings: Settings,
    host: str,
    port: int,
    threads: int = 8,
    *,
    sns_trust: SnsTrust | None = None,
    **options: Any,
) -> Any:
    """The waitress server `digest serve` runs, listening but not yet serving (`.run()`);
    `options` change waitress's settings (tests shorten the timeouts); `sns_trust` is
    `create_app`'s (tests only)."""
    import waitress

    return waitress.create_server(
        create_app(settings, sns_trust=sns_trust),
        **server_options(settings, host, port, threads) | options,
    )


def server_options(settings: Settings, host: str, port: int, threads: int) -> dict[str, Any]:
    """Waitress's settings for `digest serve` (see above for the limits)."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "threads": threads,
        "ident": "digest",
        "max_request_body_size": MAX_BODY,
        "connection_limit": connection_limit(),
        "asyncore_use_poll": True,
        "channel_timeout": CHANNEL_TIMEOUT,
        "cleanup_interval": CLEANUP_INTERVAL,
    }
    proxy = settings.web.trusted_proxy
    if proxy:
        options |= {
            "trusted_proxy": proxy,
            "trusted_proxy_count": 1,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"},
            "clear_untrusted_proxy_headers": True,
        }
    return options
