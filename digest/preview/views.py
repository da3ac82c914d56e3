"""The routes: the index, one subscriber's message and its parts, an ad-hoc subscriber's, the
test-send button, the long-poll and the two static files. See the package docstring for URLs."""

from __future__ import annotations

import hmac
import json
import re
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from flask import Response, abort, request

from .. import send as sending
from ..errors import DigestError
from ..settings import Settings
from ..subscribers import valid_email
from ..subscribers.fields import GROUPINGS
from .pages import (
    EMAIL_CSP,
    error_page,
    format_kb,
    message_page,
    no_subscriber,
    page,
    plain,
    subscriber_message_page,
)
from .site import current_site
from .snapshot import (
    BadQuery,
    MessageView,
    Snapshot,
    adhoc_subscriber,
    compose_adhoc,
    message_view,
)

STATIC = {"preview.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml"}


class InputsBroken(Exception):
    """The inputs did not load: a page that needs them is the error page instead (HTTP 500)."""

    def __init__(self, error: DigestError, token: str | None) -> None:
        super().__init__(error.message)
        self.error, self.token = error, token


def inputs_broken(exc: InputsBroken) -> Response:
    return error_page(exc.error, exc.token)


def loaded(reload: bool = True) -> Snapshot:
    """The current snapshot; InputsBroken when it holds an error (the page reloads on the
    next change unless `reload` is False)."""
    snapshot = current_site().watcher.snapshot()
    if snapshot.error is not None:
        raise InputsBroken(snapshot.error, snapshot.token if reload else None)
    return snapshot


def _last(values: list[str], default: str = "") -> str:
    """The last of a repeated parameter, as a later one overrides an earlier one."""
    return values[-1] if values else default


# -- pages -----------------------------------------------------------------------------------


def index_view() -> Response:
    snapshot = loaded()
    assert snapshot.inputs is not None
    search = _last(request.args.getlist("q"))
    rows = [_index_row(snapshot, result, search) for result in snapshot.results]
    return page(
        "index.html",
        rows=rows,
        search=search,
        shown=sum(r["match"] for r in rows),
        sending=sum(1 for r in rows if r["view"] is not None),
        snapshot=snapshot,
        taxonomy=snapshot.inputs.taxonomy,
        token=snapshot.token,
    )


def _index_row(snapshot: Snapshot, result: sending.PreviewResult, search: str) -> dict[str, Any]:
    subscriber, view = result.subscriber, snapshot.view(result)
    regions = ", ".join(subscriber.regions) or "All regions"
    topics = ", ".join(subscriber.topics) or "All topics"
    text = " ".join(
        [subscriber.email, subscriber.name, regions, topics, view.subject if view else ""]
    ).casefold()
    return {
        "subscriber": subscriber,
        "view": view,
        "regions": regions,
        "topics": topics,
        "search": text,
        "match": all(word in text for word in search.casefold().split()),
    }


def subscriber_view(address: str) -> Response:
    snapshot = loaded()
    result = snapshot.find(address)
    if result is None:
        return no_subscriber(address, snapshot.token)
    return subscriber_message_page(snapshot, result)


def subscriber_part_view(address: str, part: str) -> Response:
    snapshot = loaded()
    result = snapshot.find(address)
    if result is None:
        return no_subscriber(address, snapshot.token)
    return _part(result, snapshot.view(result), part)


def adhoc_view() -> Response:
    snapshot = loaded()
    assert snapshot.inputs is not None
    try:
        subscriber = adhoc_subscriber(request.args.to_dict(flat=False), snapshot)
    except BadQuery as exc:
        return page(
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
        + ([("language", subscriber.language)] if subscriber.language else [])
        + [("item_languages", code) for code in subscriber.item_languages]
    )
    result = compose_adhoc(snapshot, subscriber)
    return message_page(
        snapshot,
        result,
        message_view(result.message) if result.message else None,
        title="A new subscriber",
        part_url=lambda part: f"/preview/{part}?{canonical}",
        send_url=None,
    )


def adhoc_part_view(part: str) -> Response:
    snapshot = loaded()
    try:
        subscriber = adhoc_subscriber(request.args.to_dict(flat=False), snapshot)
    except BadQuery as exc:
        return plain(400, str(exc))
    result = compose_adhoc(snapshot, subscriber)
    return _part(result, message_view(result.message) if result.message else None, part)


def _part(result: sending.PreviewResult, view: MessageView | None, part: str) -> Response:
    """The HTML part as sent (under EMAIL_CSP), the text part, or the whole message."""
    if result.message is None or view is None:
        return plain(404, "No email: nothing new for this subscriber.", "text/plain")
    if part == "eml":
        name = re.sub(r"[^A-Za-z0-9@._+-]", "_", result.subscriber.email) + ".eml"
        return Response(
            result.message.data,
            200,
            {"Content-Disposition": f'attachment; filename="{name}"'},
            content_type="message/rfc822",
        )
    if part == "text":
        return plain(200, view.text)
    return Response(view.html.encode("utf-8"), 200, {"Content-Security-Policy": EMAIL_CSP})


# -- the test-send button --------------------------------------------------------------------


def send_view(address: str) -> Response:
    """The test-send button: `digest send --only ADDRESS --to TO`, recording nothing."""
    if request.method != "POST":
        loaded()  # broken inputs are the error page here too
        return plain(405, "Method not allowed", "text/plain", {"Allow": "POST"})
    sent_token = _last(request.form.getlist("csrf"))
    if not hmac.compare_digest(sent_token.encode(), current_site().csrf.encode()):
        return plain(403, "Forbidden: the form is stale or came from elsewhere; reload the page.")
    snapshot = loaded(reload=False)  # a POST's answer must not reload (and send again)
    result = snapshot.find(address)
    if result is None:
        return no_subscriber(address)
    assert snapshot.settings is not None
    to = _last(request.form.getlist("to")).strip()
    outcome, status = _send_test_copy(snapshot.settings, result.subscriber.email, to)
    return subscriber_message_page(snapshot, result, status=status, send_result=outcome)


def _send_test_copy(settings: Settings, address: str, to: str) -> tuple[dict[str, Any], int]:
    """What the page says about sending `address`'s digest to `to`, and the HTTP status."""
    outcome: dict[str, Any] = {"to": to, "ok": False, "message": "", "hint": None}
    if not valid_email(to):
        outcome["message"] = f"{to!r} is not an email address." if to else "Enter an address."
        return outcome, 400
    try:
        report = sending.send(settings, only=[address], to=to)
    except DigestError as exc:
        outcome.update(message=exc.message, hint=exc.hint)
        return outcome, 502
    done = report.outcomes[0] if report.outcomes else None
    if report.aborted:
        outcome["message"] = report.aborted
        return outcome, 502
    if done is None or done.status == "skipped":
        outcome["message"] = "Nothing sent: this subscriber has nothing new."
        return outcome, 409
    if done.status == "failed":
        outcome["message"] = done.error or "the send failed"
        return outcome, 502
    outcome.update(
        ok=True,
        message=f"Sent a test copy to {to} ({done.items} items, {format_kb(done.size)}); "
        "nothing was recorded.",
    )
    return outcome, 200


# -- the long-poll and the files -------------------------------------------------------------


def changes_view() -> Response:
    """Held until a watched file changes (or the poll timeout passes): the token now."""
    since = request.args.getlist("since")
    token = current_site().watcher.wait_for_change(since[-1] if since else None)
    return Response(json.dumps({"token": token}).encode(), 200, content_type="application/json")


def static_view(name: str) -> Response:
    """Only the named files: no path from the request ever reaches the file system."""
    if name not in STATIC:
        abort(404)
    data = (resources.files("digest.preview") / "templates" / name).read_bytes()
    return Response(data, 200, content_type=STATIC[name])


def favicon_view() -> Response:
    return Response(b"", 204, content_type="image/x-icon")
