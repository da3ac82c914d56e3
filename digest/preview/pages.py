"""The pages' shared parts: a template rendered with the page headers, the error and 404 pages,
and the message page that a subscriber's and an ad-hoc preview share."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Response, render_template

from .. import send as sending
from ..errors import DigestError, ProblemList
from ..languages import reader_languages
from ..settings import Settings
from ..subscribers.fields import GROUPINGS
from .site import current_site
from .snapshot import MessageView, Snapshot
from .watch import watched_files

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
PLAIN = "text/plain; charset=utf-8"
_LOCATION = re.compile(r"^(?P<path>/[^:\n]+?):(?P<line>\d+)\b")


def subscriber_url(address: str, suffix: str = "") -> str:
    return "/s/" + quote(address, safe="@+") + (f"/{suffix}" if suffix else "")


def format_kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


def plain(
    status: int, text: str, content_type: str = PLAIN, headers: dict[str, str] | None = None
) -> Response:
    """A short answer without a page: the content type exactly as given."""
    return Response(text.encode("utf-8"), status, headers, content_type=content_type)


def page(name: str, status: int = 200, **context: Any) -> Response:
    """A page template, with the token it reloads on (`token`, None for a page that must not)."""
    context.setdefault("token", None)
    context.setdefault("languages", reader_languages())
    body = render_template(name, config=current_site().watcher.config, **context)
    return Response(body, status, {"Content-Security-Policy": PAGE_CSP})


def not_found(what: str, token: str | None = None) -> Response:
    return page("not_found.html", 404, what=what, token=token)


def no_subscriber(address: str, token: str | None = None) -> Response:
    return not_found(f"no subscriber {address!r} in the subscribers file", token)


def _human_kind(exc: DigestError) -> str:
    """TemplateError -> 'Template error'."""
    if isinstance(exc, ProblemList):
        return "Problems in the input"
    words = re.findall(r"[A-Z][a-z]*", type(exc).__name__)
    return " ".join(words).capitalize() if words else "Error"


def error_page(exc: DigestError, token: str | None) -> Response:
    """HTTP 500 naming each problem, with the lines around its `path:line` when it has one."""
    watcher = current_site().watcher
    problems = exc.problems if isinstance(exc, ProblemList) else [exc]
    watched = {p.resolve() for p in watched_files(watcher.config, watcher.settings)}
    shown = [
        {"message": p.message, "hint": p.hint, "excerpt": _excerpt(p.message, watched)}
        for p in problems
    ]
    return page("error.html", 500, title=_human_kind(exc), problems=shown, token=token)


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


def describe_delivery(settings: Settings) -> str:
    delivery = settings.delivery
    if delivery.method == "smtp":
        return f"SMTP {delivery.smtp.host}:{delivery.smtp.port}"
    return f"the Maildir {delivery.maildir}"


def message_page(
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
    """One message: headers, the HTML at two widths, the text, the size; a test-send form
    when `send_url` is given. A page showing a send's result does not reload."""
    assert snapshot.settings is not None and snapshot.inputs is not None
    return page(
        "message.html",
        status,
        title=title,
        subscriber=result.subscriber,
        view=view,
        adhoc=send_url is None,
        part_url=part_url,
        send_url=send_url,
        csrf=current_site().csrf,
        delivery=describe_delivery(snapshot.settings),
        lookback=snapshot.settings.lookback,
        taxonomy=snapshot.inputs.taxonomy,
        groupings=GROUPINGS,
        token=None if "send_result" in extra else snapshot.token,
        **extra,
    )


def subscriber_message_page(
    snapshot: Snapshot, result: sending.PreviewResult, **extra: Any
) -> Response:
    address = result.subscriber.email
    return message_page(
        snapshot,
        result,
        snapshot.view(result),
        title=result.subscriber.name or address,
        part_url=lambda part: subscriber_url(address, part),
        send_url=subscriber_url(address, "send"),
        **extra,
    )
