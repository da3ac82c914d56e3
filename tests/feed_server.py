"""A real HTTP server on loopback (http.server on a thread) serving feeds the way the web does:
200 with an ETag and Last-Modified (and 304 to a conditional GET that matches), redirects,
404 and 500, a server too slow to answer, one that trickles, huge bodies, gzip. It records
every request it gets, with its headers, so tests can see what digest sent."""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    location: str | None = None  # for redirects
    validators: bool = True  # send an ETag and Last-Modified, answer 304 when they match
    gzip: bool = False  # gzip the body when the client accepts it
    delay: float = 0.0  # seconds before answering at all
    trickle: float = 0.0  # seconds between the body's bytes (sent one at a time)
    chunked: bool = False  # no Content-Length: the body in chunks until the connection closes
    headers: dict[str, str] = field(default_factory=dict)
    gzipped: bytes = field(default=b"", init=False, repr=False)

    def __post_init__(self) -> None:
        if self.gzip:  # compressed once, before any client waits for it
            self.gzipped = gzip.compress(self.body, compresslevel=6)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    status: int = 0


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hanging up early is what the slow and huge tests make them do."""


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.modified = email.utils.formatdate(time.time() - 3600, usegmt=True)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                server._answer(self)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        request = Request(handler.path, {k.lower(): v for k, v in handler.headers.items()})
        self.requests.append(request)
        route = self.routes.get(handler.path)
        if route is None:
            route = Route(b"<html><body>not here</body></html>", 404, "text/html")
        if route.delay:
            time.sleep(route.delay)
        request.status = self._status(route, request)
        body = route.body if request.status == 200 or request.status >= 400 else b""
        handler.send_response(request.status)
        encoded = body
        if route.gzip and "gzip" in request.headers.get("accept-encoding", ""):
            encoded = route.gzipped if body else b""
            handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Type", route.content_type)
        if route.validators and request.status in (200, 304):
            handler.send_header("ETag", route.etag)
            handler.send_header("Last-Modified", self.modified)
        if route.location:
            handler.send_header("Location", self.url(route.location))
        for name, value in route.headers.items():
            handler.send_header(name, value)
        self._send_body(handler, route, encoded)

    def _status(self, route: Route, request: Request) -> int:
        if route.status != 200 or not route.validators:
            return route.status
        if request.headers.get("if-none-match") == route.etag:
            return 304
        if "if-none-match" not in request.headers and (
            request.headers.get("if-modified-since") == self.modified
        ):
            return 304
        return 200

    def _send_body(self, handler: BaseHTTPRequestHandler, route: Route, body: bytes) -> None:
        with contextlib.suppress(OSError):  # the client gave up: that is what some tests want
            if route.chunked:
                handler.send_header("Connection", "close")
                handler.end_headers()
                for start in range(0, len(body), 65536):
                    handler.wfile.write(body[start : start + 65536])
                handler.close_connection = True
                return
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if not route.trickle:
                handler.wfile.write(body)
                return
            for byte in body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(route.trickle)


@contextlib.contextmanager
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
