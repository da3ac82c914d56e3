"""Complaints: RFC 5965 feedback reports (Yahoo CFL, AOL, Comcast, Fastmail...) and Microsoft
JMRP reports, which attach the complained-about message with X-HmXmrOriginalRecipient.

Only abuse, fraud and "other" feedback are complaints; not-spam, virus and auth-failure
(DMARC failure) reports are something else and change nobody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from .mime import addresses, content_type, header, payload_text, returned_headers, walk

COMPLAINT_TYPES = frozenset({"abuse", "fraud", "other"})  # RFC 5965 requires the field
_FIELD = re.compile(r"^([A-Za-z][\w-]*):[ \t]*(.*)$", re.M)


@dataclass(frozen=True)
class Feedback:
    feedback_type: str
    complainant: str | None  # Original-Rcpt-To, Removal-Recipient, or the original's To
    is_complaint: bool


def _report_fields(part: Message) -> dict[str, list[str]]:
    """The report's fields, whether the parser made them a nested message or left text."""
    fields: dict[str, list[str]] = {}
    payload = part.get_payload()
    if isinstance(payload, list):
        for inner in payload:
            if isinstance(inner, Message):
                for key in inner:
                    fields.setdefault(key.lower(), []).append(header(inner, key))
    if not fields:
        for name, value in _FIELD.findall(payload_text(part)):
            fields.setdefault(name.lower(), []).append(value.strip())
    return fields


def _first_address(values: list[str]) -> str | None:
    found = addresses(values)
    return found[0] if found else None


def read_feedback(message: Message) -> Feedback | None:
    """The feedback report in `message`, or None when it is not one."""
    report = next((p for p in walk(message) if content_type(p) == "message/feedback-report"), None)
    if report is not None:
        fields = _report_fields(report)
        feedback_type = (fields.get("feedback-type") or [""])[0].strip().lower()
        complainant = _first_address(fields.get("original-rcpt-to", [])) or _first_address(
            fields.get("removal-recipient", [])
        )
        if complainant is None:
            complainant = _first_address([header(h, "To") for h in returned_headers(message)])
        return Feedback(feedback_type, complainant, feedback_type in COMPLAINT_TYPES)
    return _read_jmrp(message)


def _read_jmrp(message: Message) -> Feedback | None:
    """Microsoft's JMRP: a forwarded copy of the message with X-HmXmrOriginalRecipient."""
    for returned in returned_headers(message):
        recipient = header(returned, "X-HmXmrOriginalRecipient")
        if recipient:
            return Feedback("abuse", _first_address([recipient]), True)
    return None
