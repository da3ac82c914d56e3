"""Amazon SES bounce and complaint notifications (JSON, usually inside an SNS message) read
into the same Classified as a bounce mail, for the webhook of `digest serve`.

Checking the SNS signature is the webhook's job; this only reads a notification it trusts.
Both SES shapes are read: notifications (`notificationType`) and event publishing
(`eventType`). Hard/soft: the diagnostic decides as for mail; without one, a Permanent
bounce is hard unless its sub-type says the message (not the address) was refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .model import Classified, FailedRecipient
from .severity import best_status, find_code, is_hard, one_line

_MESSAGE_REFUSED = {"ContentRejected", "AttachmentRejected", "UnsupportedAttachment"}
_ADDRESS_GONE = {"NoEmail", "Suppressed", "OnAccountSuppressionList"}


def _load(notification: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    data: Any = notification
    if isinstance(data, bytes | str):
        data = json.loads(data)
    if isinstance(data, Mapping) and data.get("Type") == "Notification":
        data = json.loads(data.get("Message") or "{}")  # the SNS envelope around it
    if not isinstance(data, Mapping):
        raise ValueError("not a JSON object")
    return data


def classify_ses(notification: Mapping[str, Any] | str | bytes) -> Classified:
    """The Classified for one SES notification; kind "other" (with the reason) for a
    delivery notice, an unknown type, or JSON that cannot be read. Never raises."""
    try:
        data = _load(notification)
    except (ValueError, TypeError) as exc:
        return Classified("other", reason=one_line(f"unreadable SES notification: {exc}"))
    kind = str(data.get("notificationType") or data.get("eventType") or "")
    mail = data.get("mail") if isinstance(data.get("mail"), Mapping) else {}
    ids = _message_ids(mail)
    envelope = tuple(a for a in [mail.get("source")] if isinstance(a, str) and a)
    if kind == "Bounce":
        return _bounce(data.get("bounce") or {}, ids, envelope)
    if kind == "Complaint":
        complaint = data.get("complaint") or {}
        people = [r.get("emailAddress") for r in complaint.get("complainedRecipients") or []]
        feedback = complaint.get("complaintFeedbackType") or None
        if complaint.get("complaintSubType") == "OnAccountSuppressionList":
            return Classified(
                "other",
                (),
                ids,
                envelope,
                people[0] if people else None,
                reason="complaint suppressed by SES (on the suppression list)",
            )
        return Classified(
            "complaint",
            (),
            ids,
            envelope,
            people[0] if people else None,
            feedback,
            reason=f"SES complaint ({feedback or 'no type'})",
        )
    return Classified("other", (), ids, envelope, reason=f"SES notification of type {kind!r}")


def _bounce(
    bounce: Mapping[str, Any], ids: tuple[str, ...], envelope: tuple[str, ...]
) -> Classified:
    bounce_type = str(bounce.get("bounceType") or "")
    sub_type = str(bounce.get("bounceSubType") or "")
    recipients = []
    for entry in bounce.get("bouncedRecipients") or []:
        diagnostic = one_line(str(entry.get("diagnosticCode") or ""))
        if ";" in diagnostic[:12]:
            diagnostic = diagnostic.split(";", 1)[1].strip()
        status = best_status(entry.get("status"), diagnostic)
        code = find_code(diagnostic)
        if bounce_type != "Permanent" or sub_type in _MESSAGE_REFUSED:
            hard = False
        elif sub_type in _ADDRESS_GONE:
            hard = True
        elif diagnostic or status:
            hard = is_hard(status, code, diagnostic)
        else:
            hard = True  # SES's own "General" hard bounce, nothing more said
        reason = diagnostic or f"SES {bounce_type} bounce ({sub_type})"
        recipients.append(FailedRecipient(entry.get("emailAddress"), status, code, reason, hard))
    summary = f"SES {bounce_type or 'unknown'} bounce ({sub_type or 'no sub-type'})"
    return Classified("bounce", tuple(recipients), ids, envelope, reason=summary)


def _message_ids(mail: Mapping[str, Any]) -> tuple[str, ...]:
    """The original's Message-ID header (SES's own messageId is not a header value)."""
    found: list[str] = []
    common = mail.get("commonHeaders") or {}
    if isinstance(common.get("messageId"), str):
        found.append(common["messageId"])
    for item in mail.get("headers") or []:
        if str(item.get("name", "")).lower() == "message-id" and item.get("value"):
            found.append(str(item["value"]))
    return tuple(dict.fromkeys(i.strip() for i in found if i.strip().startswith("<")))
