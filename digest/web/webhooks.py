"""Providers' bounce webhooks in `digest serve`, feeding the same records as `digest bounces`
(same state tables, same policy, same suppression journal).

    POST P/webhooks/ses     Amazon SES notifications delivered by SNS over HTTPS
    POST P/webhooks/bounce  a generic signed JSON POST (`bounces.generic` for the fields)

SES over SNS: the SNS signature is checked (`sns`), and only topics listed in
`bounces.sns_topics` are accepted (none listed: the route answers 404). A
SubscriptionConfirmation of such a topic is confirmed by fetching its SubscribeURL (an https
SNS URL); a Notification's SES bounce or complaint is recorded, once per SNS MessageId.

Generic: the body is one JSON event or a list of up to 100, and the header
`X-Digest-Signature: sha256=<hex HMAC-SHA256 of the raw body>` is made with the secret in the
environment variable `bounces.webhook_secret_env` names (unset: the route answers 404). An
event is recorded once per its "id" (or its content).

Both are trusted once their signature checks: with VERP on, an event without a token is
still attributed by its recipient or Message-ID. Requests that fail the checks count toward
the per-client limit of POSTs; genuine ones do not (a provider sends many from few hosts).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, request

from ..bounces import Incoming, Processed, classify_event, classify_ses, recorder_for
from ..bounces.mailbox import fingerprint
from ..clock import utcnow
from ..settings import Settings
from .guards import client, limit
from .site import current_site, log, open_state
from .sns import SnsError, SnsTrust, verify

SIGNATURE_HEADER = "X-Digest-Signature"
MAX_EVENTS = 100


@dataclass(frozen=True)
class Webhooks:
    topics: frozenset[str]  # SNS topic ARNs accepted
    secret: bytes | None  # the generic webhook's HMAC secret; None: off
    trust: SnsTrust


def make_webhooks(settings: Settings, trust: SnsTrust | None) -> Webhooks:
    bounces = settings.bounces
    secret = None
    if bounces.webhook_secret_env:
        secret = os.environ.get(bounces.webhook_secret_env, "").encode() or None
        if secret is None:
            log.warning(
                "bounces.webhook_secret_env names $%s, which is empty: the generic bounce "
                "webhook is off",
                bounces.webhook_secret_env,
            )
    return Webhooks(frozenset(bounces.sns_topics), secret, trust or SnsTrust())


def current_webhooks() -> Webhooks:
    return current_app.extensions["digest.webhooks"]  # type: ignore[no-any-return]


def _reply(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain")


def _refuse(status: int, text: str) -> Response:
    """A request that failed the checks: counted toward the client's POST limit."""
    log.warning("webhook %s refused (%s): %s", request.path, status, text)
    limit("posts", client(), "Too many requests came from your network.")
    return _reply(status, text)


def _record(batch: Sequence[Incoming]) -> list[Processed]:
    settings = current_site().settings
    with open_state() as state:
        results = recorder_for(settings, state, False, utcnow).record(batch)
    for r in results:
        log.info("webhook %s: %s %s: %s", r.file, r.action, r.subscriber or "-", r.reason)
    return results


def _results(results: list[Processed]) -> Response:
    body = json.dumps({"results": [r.to_json() for r in results]}, ensure_ascii=False)
    return Response(body, status=200, mimetype="application/json")


def ses_view() -> Any:
    hooks = current_webhooks()
    if not hooks.topics:
        return _reply(404, "the SES webhook is off (bounces.sns_topics lists no topic)")
    try:
        message = json.loads(request.get_data())
    except ValueError:
        return _refuse(400, "not JSON")
    if not isinstance(message, dict):
        return _refuse(400, "not an SNS message")
    topic = message.get("TopicArn")
    if topic not in hooks.topics:
        return _refuse(403, f"topic {topic!r} is not in bounces.sns_topics")
    try:
        verify(message, hooks.trust)
        if message["Type"] == "SubscriptionConfirmation":
            hooks.trust.fetch(str(message.get("SubscribeURL")), "SubscribeURL")
            log.info("SNS subscription to %s confirmed", topic)
            return _reply(200, "subscription confirmed")
    except SnsError as exc:
        return _refuse(403, str(exc))
    if message["Type"] != "Notification":
        log.info("SNS %s for %s", message["Type"], topic)
        return _reply(200, "noted")
    message_id = str(message.get("MessageId"))
    incoming = Incoming(
        f"sns:{topic}:{message_id}",
        fingerprint(f"sns:{message_id}".encode()),
        classify_ses(str(message.get("Message") or "")),
        trusted=True,
    )
    return _results(_record([incoming]))


def generic_view() -> Any:
    hooks = current_webhooks()
    if hooks.secret is None:
        return _reply(404, "the bounce webhook is off (bounces.webhook_secret_env is not set)")
    body = request.get_data()
    wanted = "sha256=" + hmac.new(hooks.secret, body, hashlib.sha256).hexdigest()
    given = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
    if not hmac.compare_digest(given.encode(), wanted.encode()):
        return _refuse(401, f"missing or wrong {SIGNATURE_HEADER}")
    try:
        data = json.loads(body)
    except ValueError:
        return _reply(400, "not JSON")
    events = data if isinstance(data, list) else [data]
    if not 0 < len(events) <= MAX_EVENTS:
        return _reply(400, f"send 1 to {MAX_EVENTS} events")
    batch = []
    for number, event in enumerate(events, start=1):
        key = event.get("id") if isinstance(event, dict) else None
        identity = f"id:{key}" if isinstance(key, str | int) else json.dumps(event, sort_keys=True)
        name = f"webhook:{key}" if key is not None else f"webhook:#{number}"
        batch.append(
            Incoming(
                name,
                fingerprint(f"webhook:{identity}".encode()),
                classify_event(event),
                trusted=True,
            )
        )
    return _results(_record(batch))
