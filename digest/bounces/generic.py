"""The generic bounce webhook's JSON event read into the same Classified as a bounce mail.

    {"type": "bounce" | "complaint" | "auto-reply",   required
     "recipient": "ana@example.org",                  required for bounces and complaints
     "status": "5.1.1", "code": 550, "reason": "...", optional: the DSN status, reply, text
     "hard": true,                                    optional: else judged from the above
     "message_id": "<...@example.org>",               optional: the digest's Message-ID
     "envelope_sender": "bounces+TOKEN@example.org",  optional: the VERP address it went to
     "id": "evt-123"}                                 optional: the provider's event id

Checking the signature is the webhook's job; this only reads an event it trusts. A missing
"hard" is judged as for mail, from the status, code and reason (soft when nothing says the
address is bad).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import Classified, FailedRecipient
from .severity import best_status, find_code, is_hard, one_line

KINDS = ("bounce", "complaint", "auto-reply")


def classify_event(event: Any) -> Classified:
    """The Classified for one event; "other" with the reason for anything unusable."""
    if not isinstance(event, Mapping):
        return Classified("other", reason="not a JSON object")
    kind = event.get("type")
    if kind not in KINDS:
        return Classified("other", reason=f"unknown type {kind!r}; expected one of {KINDS}")
    recipient = _text(event.get("recipient"))
    ids = tuple(i for i in [_text(event.get("message_id"))] if i)
    envelope = tuple(a for a in [_text(event.get("envelope_sender"))] if a)
    reason = one_line(_text(event.get("reason")) or "")
    if kind == "complaint":
        return Classified(
            "complaint", (), ids, envelope, recipient, "abuse", reason=reason or "complaint"
        )
    if kind == "auto-reply":
        return Classified("auto-reply", (), ids, envelope, reason=reason or "auto-reply")
    if not recipient:
        return Classified("other", (), ids, envelope, reason="a bounce without a recipient")
    code = event.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else find_code(reason)
    status = best_status(_text(event.get("status")), reason)
    hard = event.get("hard")
    if not isinstance(hard, bool):
        hard = is_hard(status, code, reason)
    failed = FailedRecipient(recipient, status, code, reason or (status or "bounce"), hard)
    what = "hard" if hard else "soft"
    return Classified("bounce", (failed,), ids, envelope, reason=f"{what} bounce (webhook)")


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
