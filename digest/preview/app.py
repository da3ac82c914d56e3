"""The local preview server: every subscriber's digest in the browser before it goes out.

`digest preview --serve` runs `serve()`: a `ThreadingHTTPServer` on 127.0.0.1 only. The pages
are built from a `Snapshot` of the inputs, rebuilt whenever a watched file changes (settings,
subscribers, taxonomy, templates, item files, the state), so an edit shows on the next request.
Each page long-polls `/__changes` with the token it was built from and reloads when the token
moves. An input error (a template's file and line, a bad setting) is a page with HTTP 500; the
server keeps running and the page reloads once the file is fixed.

Previewing only reads: the state is opened read-only and nothing is sent or recorded. The one
exception is the test-send button, which goes through `send(to=...)` exactly like
`digest send --to`.

Routes:
  GET  /                        every subscriber: regions, topics, items, subject, HTML size
  GET  /s/<email>               one subscriber's email: headers, HTML at two widths, text, size
  GET  /s/<email>/html          the HTML part as sent (the frames load it)
  GET  /s/<email>/text          the plain-text part
  GET  /s/<email>/eml           the whole message
  POST /s/<email>/send          send a test copy to the form's address (`to`)
  GET  /preview?regions=&topics=&group_by=&name=
                                an ad-hoc subscriber: what someone new would get
  GET  /preview/html|text|eml   its parts, same query
  GET  /__changes?since=TOKEN   long-poll: the token of the watched files, once it differs
  GET  /static/preview.js       the page script (also favicon.svg)
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import time
import traceback
import webbrowser
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import jinja2

from .. import send as sending
from ..errors import DigestError, ProblemList, SourceError
from ..models import Subscriber, TaggedItem
from ..settings import Settings, load_settings
from ..sources import expand
from ..clock import utcnow
from ..subscribers import valid_email
from ..subscribers.fields import GROUPINGS, check_names

HOST = "127.0.0.1"  # never all interfaces: the pages hold every subscriber's address
DEFAULT_PORT = 8025
GMAIL_CLIP = 102 * 1024  # Gmail cuts a message whose HTML passes about 102 KB
SIZE_WARNING = 90 * 1024
ADHOC_EMAIL = "preview@localhost"
ADHOC_PARAMS = ("regions", "topics", "group_by", "name")
POLL_TIMEOUT = 25.0  # seconds a /__changes request waits before answering "no change"
POLL_INTERVAL = 0.25
SNAPSHOT_MAX_AGE = 60.0  # rebuild at least this often: the lookback window moves with the clock
MAX_FORM_BYTES = 16 * 1024
STATIC = {"preview.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml"}

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# The email's own HTML runs no script even when opened on its own, outside the sandboxed frame.
EMAIL_CSP = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; script-src 'none'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


# -- what the pages show ---------------------------------------------------------------------


@dataclass(frozen=True)
class MessageView:
    """One message as it will be sent, read back from its bytes with the stdlib parser."""

    subject: str
    headers: list[tuple[str, str]]
    html: str
    text: str
    message_bytes: int
    shown: int  # items in the body
    total: int  # items selected (more than shown when the size cap cut the body)

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))

    @property
    def size_level(self) -> str:
        if self.html_bytes >= GMAIL_CLIP:
            return "over"
        return "warn" if self.html_bytes >= SIZE_WARNING else "ok"

    @property
    def size_percent(self) -> int:
        return min(100, round(self.html_bytes * 100 / GMAIL_CLIP))


def message_view(composed: sending.ComposedMessage) -> MessageView:
    message = email.message_from_bytes(composed.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    parts = {kind: message.get_body((kind,)) for kind in ("html", "plain")}
    content = {  # the message's lines end in CRLF on the wire; show them as the template wrote
        kind: part.get_content().replace("\r\n", "\n") if part is not None else ""
        for kind, part in parts.items()
    }
    return MessageView(
        subject=str(message.get("Subject", "")),
        headers=[(name, str(value)) for name, value in message.items()],
        html=content["html"],
        text=content["plain"],
        message_bytes=len(composed.data),
        shown=composed.rendered.shown,
        total=len(composed.digest.items),
    )


@dataclass
class Snapshot:
    """The inputs and every subscriber's message at one moment, or the error that stopped them."""

    token: str
    built: datetime
    settings: Settings | None = None
    inputs: sending.Inputs | None = None
    results: list[sending.PreviewResult] = field(default_factory=list)
    items: list[TaggedItem] = field(default_factory=list)
    secret: bytes = b"preview"
    source_problems: list[SourceError] = field(default_factory=list)
    error: DigestError | None = None
    views: dict[str, MessageView] = field(default_factory=dict)
    adhoc: dict[Subscriber, sending.PreviewResult] = field(default_factory=dict)
    adhoc_lock: threading.Lock = field(default_factory=threading.Lock)

    def find(self, address: str) -> sending.PreviewResult | None:
        folded = address.casefold()
        return next((r for r in self.results if r.subscriber.email.casefold() == folded), None)

    def view(self, result: sending.PreviewResult) -> MessageView | None:
        if result.message is None:
            return None
        key = result.subscriber.email.casefold()
        if key not in self.views:
            self.views[key] = message_view(result.message)
        return self.views[key]


def build_snapshot(config: Path, token: str, now: datetime) -> Snapshot:
    """Load everything and prepare every subscriber's message, reading the state only."""
    snapshot = Snapshot(token=token, built=now)
    try:
        settings = snapshot.settings = load_settings(config)
        inputs = snapshot.inputs = sending.load_inputs(settings)
        # Unreadable item files are shown on the index instead of silently missing.
        with sending.open_previews(settings, inputs, now=now) as previews:
            snapshot.secret = previews.secret
            snapshot.results = list(previews.results())
            snapshot.items, snapshot.source_problems = previews.items, previews.pickup.problems
    except DigestError as exc:
        snapshot.error = exc
    except Exception as exc:  # a bug or a broken state file: show it, keep serving
        traceback.print_exc(file=sys.stderr)
        snapshot.error = DigestError(
            f"unexpected error while building the preview: {type(exc).__name__}: {exc}",
            hint="the traceback is in the terminal running `digest preview --serve`",
        )
    return snapshot


def compose_adhoc(snapshot: Snapshot, subscriber: Subscriber) -> sending.PreviewResult:
    """What a subscriber nobody has sent anything to yet would get from the same items.
    Kept per snapshot: the page and its two frames ask for the same one at once."""
    assert snapshot.inputs is not None
    with snapshot.adhoc_lock:
        if subscriber not in snapshot.adhoc:
            result = sending.compose_preview(
                snapshot.inputs, snapshot.items, snapshot.secret, snapshot.built, subscriber
            )
            if len(snapshot.adhoc) >= 64:
                snapshot.adhoc.clear()
            snapshot.adhoc[subscriber] = result
        return snapshot.adhoc[subscriber]


class BadQuery(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _names(
    values: list[str], kind: str, known: tuple[str, ...], problems: list[str]
) -> tuple[str, ...]:
    """`regions=Caribbean,Health` or repeated parameters, checked as the file's are."""
    written = [name.strip() for value in values for name in value.split(",") if name.strip()]
    chosen, refused = check_names(written, kind, known)
    problems.extend(refused)
    return chosen


def adhoc_subscriber(query: dict[str, list[str]], snapshot: Snapshot) -> Subscriber:
    """`?regions=Caribbean&topics=Health,Diaspora&group_by=topic` -> a Subscriber, or BadQuery
    naming every problem. Names match the taxonomy regardless of case; none means all."""
    assert snapshot.inputs is not None
    taxonomy = snapshot.inputs.taxonomy
    problems = [
        f"unknown parameter {key!r}; use {', '.join(ADHOC_PARAMS)}"
        for key in query
        if key not in ADHOC_PARAMS
    ]
    regions = _names(query.get("regions", []), "region", taxonomy.regions, problems)
    topics = _names(query.get("topics", []), "topic", taxonomy.topics, problems)
    group_by = (query.get("group_by") or ["region"])[-1].strip() or "region"
    if group_by not in GROUPINGS:
        problems.append(f"group_by must be {' or '.join(GROUPINGS)}, not {group_by!r}")
    name = " ".join((query.get("name") or [""])[-1].split())[:100]
    if problems:
        raise BadQuery(problems)
    return Subscriber(
        email=ADHOC_EMAIL, name=name, regions=regions, topics=topics, group_by=group_by
    )


# -- watching the files ----------------------------------------------------------------------


def _editor_litter(path: Path) -> bool:
    """Swap and backup files editors write beside the one being edited."""
    name = path.name
    return name.startswith((".", "#")) or name.endswith(("~", ".swp", ".swx")) or name == "4913"


def watched_files(config: Path, settings: Settings | None) -> list[Path]:
    """Every file whose change changes a preview. Feed URLs are not watched."""
    paths = [config]
    if settings is None:
        return paths
    paths.append(settings.subscribers)
    if settings.taxonomy is not None:
        paths.append(settings.taxonomy)
    if settings.templates.is_dir():
        paths += sorted(
            p for p in settings.templates.rglob("*") if p.is_file() and not _editor_litter(p)
        )
    for source in settings.sources:
        if not source.startswith(("http://", "https://")):
            paths += [Path(p) for p in expand(source)]
    paths += [settings.state, settings.state.with_name(settings.state.name + "-wal")]
    return paths


def fingerprint(paths: Iterable[Path]) -> str:
    """A short token that changes when any of the files is edited, added or removed."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            digest.update(f"{path}\0-\n".encode())
            continue
        # An empty SQLite -wal appears when the state is opened read-only: not a change.
        if stat.st_size == 0 and path.name.endswith("-wal"):
            digest.update(f"{path}\0-\n".encode())
            continue
        digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
    return digest.hexdigest()[:20]


# -- the application -------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _human_kind(exc: DigestError) -> str:
    """TemplateError -> 'Template error'."""
    if isinstance(exc, ProblemList):
        return "Problems in the input"
    words = re.findall(r"[A-Z][a-z]*", type(exc).__name__)
    return " ".join(words).capitalize() if words else "Error"


_LOCATION = re.compile(r"^(?P<path>/[^:\n]+?):(?P<line>\d+)\b")


def subscriber_url(address: str, suffix: str = "") -> str:
    return "/s/" + quote(address, safe="@+") + (f"/{suffix}" if suffix else "")


def format_kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


class PreviewApp:
    """Routes a request to a page. Knows nothing of sockets: `Handler` feeds it."""

    def __init__(
        self,
        config: Path,
        settings: Settings | None = None,
        *,
        poll_timeout: float = POLL_TIMEOUT,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = Path(config).absolute()
        self.settings = settings  # the last settings that loaded: they say what to watch
        self.poll_timeout = poll_timeout
        self.clock = clock
        self.csrf = secrets.token_urlsafe(24)  # a web page elsewhere cannot post a test send
        self.stopping = threading.Event()
        self.allowed_hosts: set[str] = set()
        self.waiting = 0  # /__changes requests being held now
        self._waiting_lock = threading.Lock()
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._built_at = 0.0
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("digest.preview", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["kb"] = format_kb
        self.env.globals.update(
            subscriber_url=subscriber_url,
            GMAIL_CLIP=GMAIL_CLIP,
            SIZE_WARNING=SIZE_WARNING,
        )

    # -- state of the files ------------------------------------------------------------------
    def token(self) -> str:
        return fingerprint(watched_files(self.config, self.settings))

    def snapshot(self) -> Snapshot:
        """The current snapshot, rebuilt when a watched file changed (or it is a minute old)."""
        with self._lock:
            token = self.token()  # taken before reading the files, so no edit is missed
            current = self._snapshot
            fresh = time.monotonic() - self._built_at < SNAPSHOT_MAX_AGE
            if current is not None and current.token == token and fresh:
                return current
            snapshot = build_snapshot(self.config, token, self.clock())
            if snapshot.settings is not None and snapshot.settings != self.settings:
                # New settings may watch other files: build once more, the token taken over them.
                self.settings = snapshot.settings
                snapshot = build_snapshot(self.config, self.token(), self.clock())
            self._snapshot, self._built_at = snapshot, time.monotonic()
            return snapshot

    def wait_for_change(self, since: str | None) -> str:
        """The current token once it differs from `since` (or after `poll_timeout`)."""
        deadline = time.monotonic() + self.poll_timeout
        token = self.token()
        with self._waiting_lock:
            self.waiting += 1
        try:
            while since is not None and token == since and not self.stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.stopping.wait(min(POLL_INTERVAL, remaining))
                token = self.token()
        finally:
            with self._waiting_lock:
                self.waiting -= 1
        return token

    # -- rendering ---------------------------------------------------------------------------
    def page(self, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("token", None)
        body = self.env.get_template(name).render(config=self.config, **context)
        return Response(status, body.encode("utf-8"), headers={"Content-Security-Policy": PAGE_CSP})

    def error_page(self, exc: DigestError, snapshot: Snapshot | None) -> Response:
        problems = exc.problems if isinstance(exc, ProblemList) else [exc]
        watched = {p.resolve() for p in watched_files(self.config, self.settings)}
        shown = [
            {"message": p.message, "hint": p.hint, "excerpt": self._excerpt(p.message, watched)}
            for p in problems
        ]
        return self.page(
            "error.html",
            500,
            title=_human_kind(exc),
            problems=shown,
            token=snapshot.token if snapshot else None,
        )

    @staticmethod
    def _excerpt(message: str, watched: set[Path]) -> dict[str, Any] | None:
        """The lines around `path:line` at the start of a message, for files being watched."""
        found = _LOCATION.match(message)
        if not found:
            return None
        path, line = Path(found["path"]), int(found["line"])
        try:
            if path.resolve() not in watched:
                return None
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None
        first = max(1, line - 3)
        return {
            "path": str(path),
            "line": line,
            "lines": [(n, lines[n - 1]) for n in range(first, min(len(lines), line + 3) + 1)],
        }

    def not_found(self, what: str, token: str | None = None) -> Response:
        return self.page("not_found.html", 404, what=what, token=token)

    def no_subscriber(self, address: str, token: str | None = None) -> Response:
        return self.not_found(f"no subscriber {address!r} in the subscribers file", token)

    # -- routes ------------------------------------------------------------------------------
    def handle(self, method: str, target: str, body: bytes = b"") -> Response:
        url = urlsplit(target)
        segments = [unquote(s) for s in url.path.split("/")[1:]]
        query = parse_qs(url.query, keep_blank_values=True)
        match segments:
            case ["__changes"]:
                since = query.get("since", [])
                return _json({"token": self.wait_for_change(since[-1] if since else None)})
            case ["static", name] if name in STATIC:
                data = (resources.files("digest.preview") / "templates" / name).read_bytes()
                return Response(200, data, STATIC[name])
            case ["favicon.ico"]:
                return Response(204, b"", "image/x-icon")
        if method == "POST":
            if len(segments) == 3 and segments[0] == "s" and segments[2] == "send":
                return self.test_send(segments[1], body)
            return Response(405, b"Method not allowed", "text/plain", {"Allow": "GET"})
        snapshot = self.snapshot()
        if snapshot.error is not None:
            return self.error_page(snapshot.error, snapshot)
        match segments:
            case [""]:
                return self.index(snapshot, (query.get("q") or [""])[-1])
            case ["s", address]:
                return self.subscriber_page(snapshot, address)
            case ["s", address, "html" | "text" | "eml" as part]:
                result = snapshot.find(address)
                if result is None:
                    return self.no_subscriber(address, snapshot.token)
                return self.part(snapshot, result, part)
            case ["s", address, "send"]:
                return Response(405, b"Method not allowed", "text/plain", {"Allow": "POST"})
            case ["preview"]:
                return self.adhoc_page(snapshot, query)
            case ["preview", "html" | "text" | "eml" as part]:
                try:
                    subscriber = adhoc_subscriber(query, snapshot)
                except BadQuery as exc:
                    return Response(400, str(exc).encode(), "text/plain; charset=utf-8")
                return self.part(snapshot, compose_adhoc(snapshot, subscriber), part)
        return self.not_found(f"no page at {url.path!r}", snapshot.token)

    def index(self, snapshot: Snapshot, search: str) -> Response:
        rows = []
        for result in snapshot.results:
            subscriber, view = result.subscriber, snapshot.view(result)
            regions = ", ".join(subscriber.regions) or "All regions"
            topics = ", ".join(subscriber.topics) or "All topics"
            text = " ".join(
                [subscriber.email, subscriber.name, regions, topics, view.subject if view else ""]
            ).casefold()
            rows.append(
                {
                    "subscriber": subscriber,
                    "view": view,
                    "regions": regions,
                    "topics": topics,
                    "search": text,
                    "match": all(word in text for word in search.casefold().split()),
                }
            )
        assert snapshot.inputs is not None
        return self.page(
            "index.html",
            rows=rows,
            search=search,
            shown=sum(r["match"] for r in rows),
            sending=sum(1 for r in rows if r["view"] is not None),
            snapshot=snapshot,
            taxonomy=snapshot.inputs.taxonomy,
            token=snapshot.token,
        )

    def subscriber_message_page(
        self, snapshot: Snapshot, result: sending.PreviewResult, **extra: Any
    ) -> Response:
        email_address = result.subscriber.email
        return self.message_page(
            snapshot,
            result,
            snapshot.view(result),
            title=result.subscriber.name or email_address,
            part_url=lambda part: subscriber_url(email_address, part),
            send_url=subscriber_url(email_address, "send"),
            **extra,
        )

    def subscriber_page(self, snapshot: Snapshot, address: str) -> Response:
        result = snapshot.find(address)
        if result is None:
            return self.no_subscriber(address, snapshot.token)
        return self.subscriber_message_page(snapshot, result)

    def adhoc_page(self, snapshot: Snapshot, query: dict[str, list[str]]) -> Response:
        assert snapshot.inputs is not None
        try:
            subscriber = adhoc_subscriber(query, snapshot)
        except BadQuery as exc:
            return self.page(
                "bad_query.html",
                400,
                problems=exc.problems,
                taxonomy=snapshot.inputs.taxonomy,
                groupings=GROUPINGS,
                token=snapshot.token,
            )
        canonical = urlencode(
            [("regions", r) for r in subscriber.regions]
            + [("topics", t) for t in subscriber.topics]
            + [("group_by", subscriber.group_by)]
            + ([("name", subscriber.name)] if subscriber.name else [])
        )
        result = compose_adhoc(snapshot, subscriber)
        return self.message_page(
            snapshot,
            result,
            message_view(result.message) if result.message else None,
            title="A new subscriber",
            part_url=lambda part: f"/preview/{part}?{canonical}",
            send_url=None,
        )

    def message_page(
        self,
        snapshot: Snapshot,
        result: sending.PreviewResult,
        view: MessageView | None,
        *,
        title: str,
        part_url: Callable[[str], str],
        send_url: str | None,
        status: int = 200,
        **extra: Any,
    ) -> Response:
        assert snapshot.settings is not None and snapshot.inputs is not None
        return self.page(
            "message.html",
            status,
            title=title,
            subscriber=result.subscriber,
            view=view,
            adhoc=send_url is None,
            part_url=part_url,
            send_url=send_url,
            csrf=self.csrf,
            delivery=describe_delivery(snapshot.settings),
            lookback=snapshot.settings.lookback,
            taxonomy=snapshot.inputs.taxonomy,
            groupings=GROUPINGS,
            token=None if "send_result" in extra else snapshot.token,
            **extra,
        )

    def part(self, snapshot: Snapshot, result: sending.PreviewResult, part: str) -> Response:
        if result.message is None:
            return Response(404, b"No email: nothing new for this subscriber.", "text/plain")
        if part == "eml":
            name = re.sub(r"[^A-Za-z0-9@._+-]", "_", result.subscriber.email) + ".eml"
            return Response(
                200,
                result.message.data,
                "message/rfc822",
                {"Content-Disposition": f'attachment; filename="{name}"'},
            )
        known = snapshot.find(result.subscriber.email) is result
        view = snapshot.view(result) if known else message_view(result.message)
        assert view is not None
        if part == "text":
            return Response(200, view.text.encode("utf-8"), "text/plain; charset=utf-8")
        return Response(
            200, view.html.encode("utf-8"), headers={"Content-Security-Policy": EMAIL_CSP}
        )

    def test_send(self, address: str, body: bytes) -> Response:
        """The test-send button: `digest send --only ADDRESS --to TO`, recording nothing."""
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        token = (form.get("csrf") or [""])[-1]
        if not hmac.compare_digest(token.encode(), self.csrf.encode()):
            return Response(
                403,
                b"Forbidden: the form is stale or came from elsewhere; reload the page.",
                "text/plain; charset=utf-8",
            )
        snapshot = self.snapshot()
        if snapshot.error is not None:
            return self.error_page(snapshot.error, None)
        result = snapshot.find(address)
        if result is None:
            return self.no_subscriber(address)
        to = (form.get("to") or [""])[-1].strip()
        outcome: dict[str, Any] = {"to": to, "ok": False, "message": "", "hint": None}
        status = 200
        if not valid_email(to):
            outcome["message"] = f"{to!r} is not an email address." if to else "Enter an address."
            status = 400
        else:
            assert snapshot.settings is not None
            try:
                report = sending.send(snapshot.settings, only=[result.subscriber.email], to=to)
            except DigestError as exc:
                outcome.update(message=exc.message, hint=exc.hint)
                status = 502
            else:
                done = report.outcomes[0] if report.outcomes else None
                if report.aborted:
                    outcome["message"], status = report.aborted, 502
                elif done is None or done.status == "skipped":
                    outcome["message"] = "Nothing sent: this subscriber has nothing new."
                    status = 409
                elif done.status == "failed":
                    outcome["message"], status = done.error or "the send failed", 502
                else:
                    outcome.update(
                        ok=True,
                        message=f"Sent a test copy to {to} ({done.items} items, "
                        f"{format_kb(done.size)}); nothing was recorded.",
                    )
        return self.subscriber_message_page(
            snapshot,
            result,
            status=status,
            send_result=outcome,
        )


def _json(data: Any) -> Response:
    return Response(200, json.dumps(data).encode(), "application/json")


def describe_delivery(settings: Settings) -> str:
    delivery = settings.delivery
    if delivery.method == "smtp":
        return f"SMTP {delivery.smtp.host}:{delivery.smtp.port}"
    return f"the Maildir {delivery.maildir}"


# -- HTTP ------------------------------------------------------------------------------------


class PreviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: PreviewApp, port: int) -> None:
        self.app = app
        super().__init__((HOST, port), Handler)
        bound = self.server_address[1]
        # A page loaded through another name (DNS rebinding) is refused.
        app.allowed_hosts = {f"{HOST}:{bound}", f"localhost:{bound}"}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"


class Handler(BaseHTTPRequestHandler):
    server: PreviewServer
    server_version = "digest-preview"

    def do_GET(self) -> None:  # noqa: N802
        self._respond("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._respond("POST")

    def _respond(self, method: str) -> None:
        app = self.server.app
        try:
            host = self.headers.get("Host", "")
            origin = self.headers.get("Origin")
            if host not in app.allowed_hosts or (origin and origin != f"http://{host}"):
                response = Response(
                    403, b"Forbidden: use the address digest printed.", "text/plain"
                )
            else:
                length = self.headers.get("Content-Length") or "0"
                if method == "POST" and not (length.isdigit() and int(length) <= MAX_FORM_BYTES):
                    response = Response(413, b"The form is too large.", "text/plain")
                else:
                    body = self.rfile.read(int(length)) if method == "POST" else b""
                    response = app.handle(method, self.path, body)
        except Exception:  # a bug must not stop the server: say so and keep serving
            traceback.print_exc(file=sys.stderr)
            response = Response(
                500,
                b"Internal error in the preview server; the traceback is in its terminal.",
                "text/plain; charset=utf-8",
            )
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (a reload during a long-poll)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.path.startswith(("/__changes", "/static/")):
            return
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")


def make_server(app: PreviewApp, port: int = DEFAULT_PORT) -> PreviewServer:
    try:
        return PreviewServer(app, port)
    except OSError as exc:
        raise DigestError(
            f"cannot listen on {HOST}:{port}: {exc.strerror or exc}",
            hint="another program uses that port: pick another with --port, or --port 0 "
            "for any free one",
        ) from exc


def serve(
    settings: Settings,
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
    out: TextIO | None = None,
) -> None:
    """Serve the previews until interrupted. Prints `Preview at URL` first, flushed."""
    out = out or sys.stdout
    app = PreviewApp(settings.path, settings)
    server = make_server(app, port)
    print(f"Preview at {server.url}", file=out, flush=True)
    print("Pages reload when a file changes. Ctrl-C stops.", file=out, flush=True)
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.stopping.set()
        server.server_close()
