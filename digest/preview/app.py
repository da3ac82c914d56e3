"""The preview app on Flask, and the server it runs on: `create_app`, `make_server`, `serve`.

Werkzeug's threaded server (Flask's own, no new dependency) runs it, one thread per request as
the standard library's server did: each open page holds a `/__changes` long-poll for up to
`POLL_TIMEOUT` seconds, and a fixed pool (waitress's) would let a few open tabs hold every
thread while other pages wait. It listens on 127.0.0.1 only; the port is bound here, so a
taken port is our own error, with a hint, not werkzeug's exit.
"""

from __future__ import annotations

import socket
import sys
import threading
import traceback
import webbrowser
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import jinja2
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from ..clock import utcnow
from ..compose.render import GMAIL_CLIP
from ..errors import DigestError
from ..settings import Settings
from .pages import error_page, format_kb, not_found, plain, subscriber_url
from .site import EXTENSION, PreviewSite, current_site, site_of
from .snapshot import SIZE_WARNING
from .views import (
    InputsBroken,
    adhoc_part_view,
    adhoc_view,
    changes_view,
    favicon_view,
    index_view,
    inputs_broken,
    send_view,
    static_view,
    subscriber_part_view,
    subscriber_view,
)
from .watch import POLL_TIMEOUT, Watcher

HOST = "127.0.0.1"  # never all interfaces: the pages hold every subscriber's address
DEFAULT_PORT = 8025
MAX_FORM_BYTES = 16 * 1024
LISTEN_BACKLOG = 128
QUIET_PATHS = ("/__changes", "/static/")  # not logged: every open page asks for them

ROUTES: list[tuple[str, Callable[..., Any], list[str]]] = [
    ("/", index_view, ["GET"]),
    ("/s/<path:address>", subscriber_view, ["GET"]),
    ("/s/<path:address>/<any(html, text, eml):part>", subscriber_part_view, ["GET"]),
    ("/s/<path:address>/send", send_view, ["GET", "POST"]),
    ("/preview", adhoc_view, ["GET"]),
    ("/preview/<any(html, text, eml):part>", adhoc_part_view, ["GET"]),
    ("/__changes", changes_view, ["GET"]),
    ("/static/<name>", static_view, ["GET"]),
    ("/favicon.ico", favicon_view, ["GET"]),
]


def create_app(
    config: Path,
    settings: Settings | None = None,
    *,
    poll_timeout: float = POLL_TIMEOUT,
    clock: Callable[[], datetime] = utcnow,
) -> Flask:
    """The preview pages of the settings file `config` (`settings`: as already loaded).
    No Host is allowed until `make_server` binds a port."""
    app = Flask(
        __name__, template_folder=str(Path(__file__).with_name("templates")), static_folder=None
    )
    app.jinja_options = {
        **app.jinja_options,
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
    }
    app.jinja_env.filters["kb"] = format_kb
    app.jinja_env.globals.update(
        subscriber_url=subscriber_url, GMAIL_CLIP=GMAIL_CLIP, SIZE_WARNING=SIZE_WARNING
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_FORM_BYTES
    watcher = Watcher(config, settings, poll_timeout=poll_timeout, clock=clock)
    app.extensions[EXTENSION] = PreviewSite(watcher)
    for rule, view, methods in ROUTES:
        app.add_url_rule(rule, view.__name__, view, methods=methods)
    app.before_request(_refuse_foreign_requests)
    app.after_request(_common_headers)
    app.register_error_handler(InputsBroken, inputs_broken)
    app.register_error_handler(404, _no_page)
    app.register_error_handler(405, _method_not_allowed)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _internal_error)
    return app


# -- every request ---------------------------------------------------------------------------


def _refuse_foreign_requests() -> Response | None:
    """A page loaded through another name (DNS rebinding), a form from another origin or one
    too large is refused before any route sees it."""
    host = request.headers.get("Host", "")
    origin = request.headers.get("Origin")
    if host not in current_site().allowed_hosts or (origin and origin != f"http://{host}"):
        return plain(403, "Forbidden: use the address digest printed.", "text/plain")
    length = request.headers.get("Content-Length") or "0"
    if request.method == "POST" and not (length.isdigit() and int(length) <= MAX_FORM_BYTES):
        return plain(413, "The form is too large.", "text/plain")
    return None


def _common_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _no_page(error: HTTPException) -> Response:
    """404 with the page that reloads once the path exists; the error page if inputs broke."""
    if request.method == "POST":  # nothing but the test-send button takes a POST
        return plain(405, "Method not allowed", "text/plain", {"Allow": "GET"})
    snapshot = current_site().watcher.snapshot()
    if snapshot.error is not None:
        return error_page(snapshot.error, snapshot.token)
    return not_found(f"no page at {request.path!r}", snapshot.token)


def _method_not_allowed(error: MethodNotAllowed) -> Response:
    allowed = [m for m in (error.valid_methods or ["GET"]) if m in ("GET", "POST")]
    return plain(405, "Method not allowed", "text/plain", {"Allow": ", ".join(allowed)})


def _http_error(error: HTTPException) -> Response:
    if error.code == 413:  # a chunked form larger than MAX_FORM_BYTES
        return plain(413, "The form is too large.", "text/plain")
    return plain(error.code or 400, error.name, "text/plain")


def _internal_error(error: Exception) -> Response:
    """A bug must not stop the server: say so and keep serving."""
    traceback.print_exception(error, file=sys.stderr)
    return plain(500, "Internal error in the preview server; the traceback is in its terminal.")


# -- the server ------------------------------------------------------------------------------


class _Handler(WSGIRequestHandler):
    """One line per request on stderr, as the command always wrote, without the polls."""

    server_version = "digest-preview"  # type: ignore[assignment]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not self.path.startswith(QUIET_PATHS):
            self.log("info", '"%s" %s %s', self.requestline, code, size)

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002
        sys.stderr.write(f"{self.log_date_time_string()} {message % args}\n")


class PreviewServer(ThreadedWSGIServer):
    """The app on a socket already bound to 127.0.0.1; allows the Host names of that port."""

    def __init__(self, app: Flask, listening: socket.socket) -> None:
        super().__init__(HOST, 0, app, _Handler, fd=listening.fileno())
        bound = self.server_address[1]
        site_of(app).allowed_hosts = {f"{HOST}:{bound}", f"localhost:{bound}"}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"


def make_server(app: Flask, port: int = DEFAULT_PORT) -> PreviewServer:
    """The server for `app` on 127.0.0.1:`port` (0: any free port), not yet serving."""
    try:
        listening = socket.create_server((HOST, port), backlog=LISTEN_BACKLOG)
    except OSError as exc:
        raise DigestError(
            f"cannot listen on {HOST}:{port}: {exc.strerror or exc}",
            hint="another program uses that port: pick another with --port, or --port 0 "
            "for any free one",
        ) from exc
    with listening:  # the server holds its own copy of the socket
        return PreviewServer(app, listening)


def serve(
    settings: Settings,
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
    out: TextIO | None = None,
) -> None:
    """Serve the previews until interrupted. Prints `Preview at URL` first, flushed."""
    out = out or sys.stdout
    app = create_app(settings.path, settings)
    server = make_server(app, port)
    print(f"Preview at {server.url}", file=out, flush=True)
    print("Pages reload when a file changes. Ctrl-C stops.", file=out, flush=True)
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    try:
        server.serve_forever()  # returns on Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        site_of(app).watcher.stopping.set()  # held long-polls answer at once
        server.server_close()
