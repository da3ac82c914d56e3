"""classify(data) -> Classified: what one raw mail in the bounce mailbox is.

Order matters: a feedback report first (it can look like a bounce), then an RFC 3464 DSN,
then the human-readable formats when the mail looks like a delivery report, then auto-reply
markers (checked after bounce signs, since MTAs mark their bounces auto-replied too), and
anything left is "other" with the reason. Never raises: a mail that cannot be read is
"other" too, saying why.
"""

from __future__ import annotations

import re
from email.message import Message

from .arf import read_feedback
from .autoreply import auto_reply_reason
from .dsn import DeliveryStatus, read_delivery_status
from .formats import cut_at_returned_copy, looks_like_delay, text_failures
from .mime import (
    addresses,
    content_type,
    header,
    headers,
    notification_text,
    parse_mail,
    returned_headers,
)
from .model import Classified, FailedRecipient
from .severity import best_status, find_code, is_hard, one_line

_MESSAGE_ID = re.compile(rb"^[ \t>]*Message-ID:[ \t]*(<[^>\s]{3,250}>)", re.I | re.M)
_ENVELOPE_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Rcpt-To",
    "X-Failed-Recipients",
    "To",
    "Cc",
)
_BOUNCER = re.compile(
    r"mailer-?daemon|postmaster|mail-?daemon|mdaemon|mail delivery|delivery subsystem|"
    r"mail administrator|system administrator|^ndr@|e500_smtp|jetmail|microsoft outlook",
    re.I,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|not (?:be )?delivered|non[- ]?deliver|delivery (?:status|failure|failed|"
    r"problem|report|has failed|notification)|failure notice|failed mail|mail delivery failed|"
    r"returned mail|returned to sender|could not be delivered|mail system error|"
    r"delivery failure|mail error|processing error|non remis|unzustellbar|no entregado|"
    r"non consegnat|failed delivery|failure delivery|nondeliverable|rejected mail|"
    r"mail not delivered|user unknown|permanent (?:delivery )?failure",
    re.I,
)
_BOUNCE_BODY = re.compile(
    r"could not be delivered|couldn't be delivered|wasn't delivered|was not delivered|"
    r"not able to deliver|unable to deliver|wasn't able to deliver|delivery has failed|"
    r"following address(?:es)? failed|permanent fatal errors|failed permanently|"
    r"did not reach|could not reach|undeliverable|delivery to the following|"
    r"this is the qmail-send program|returned to sender|delivery failed|non-delivery",
    re.I,
)
MAX_MAIL_BYTES = 50 * 1024 * 1024  # past this a mail is not read at all


def classify(data: bytes) -> Classified:
    """The kind of one raw mail, its failed recipients and what identifies the original."""
    if not isinstance(data, bytes | bytearray):
        return Classified("other", reason="not bytes")
    if not data.strip():
        return Classified("other", reason="empty mail")
    if len(data) > MAX_MAIL_BYTES:
        return Classified("other", reason=f"too large to read ({len(data)} bytes)")
    try:
        message = parse_mail(bytes(data))
        return _classify_message(message, bytes(data))
    except Exception as exc:  # never stop a run over one mail: say what went wrong
        return Classified("other", reason=one_line(f"unreadable mail: {type(exc).__name__}: {exc}"))


def _classify_message(message: Message, data: bytes) -> Classified:
    if not message.keys():
        return Classified("other", reason="no mail headers")
    ids = _original_message_ids(message, data)
    envelope = _envelope_to(message)
    feedback = read_feedback(message)
    if feedback is not None:
        if not feedback.is_complaint:
            return Classified(
                "other",
                (),
                ids,
                envelope,
                feedback.complainant,
                feedback.feedback_type,
                reason=f"feedback report of type {feedback.feedback_type!r}, not a complaint",
            )
        return Classified(
            "complaint",
            (),
            ids,
            envelope,
            feedback.complainant,
            feedback.feedback_type or None,
            reason=f"feedback report ({feedback.feedback_type or 'no type'})",
        )
    status = read_delivery_status(message)
    if status is not None:
        envelope = _unique(envelope + status.envelope_senders)
        result = _from_dsn(message, status, ids, envelope)
        if result is not None:
            return result
    forwarded = _forwarded_report(message)
    if forwarded is not None:  # a gateway wrapped the real report in a message/rfc822
        inner = _classify_message(forwarded, forwarded.as_bytes())
        if inner.kind != "other":
            return inner
    return _from_text(message, ids, envelope)


def _forwarded_report(message: Message) -> Message | None:
    for returned in returned_headers(message):
        if content_type(returned) == "multipart/report":
            return returned
    return None


def _from_dsn(
    message: Message, status: DeliveryStatus, ids: tuple[str, ...], envelope: tuple[str, ...]
) -> Classified | None:
    """A DSN with failed recipients is a bounce; only delayed or delivered ones, "other".
    None when its blocks are unusable, so the text is read instead."""
    failed = [r for r in status.recipients if r.action == "failed"]
    if not failed:  # some MTAs leave out Action: a 5.x.x status means failed
        failed = [r for r in status.recipients if not r.action and (r.status or "").startswith("5")]
    usable = list({r.address.lower(): r for r in failed if r.address}.values())
    if usable:
        text = notification_text(message)
        text_reasons = {f.address.lower(): f.diagnostic for f in text_failures(text, set())}
        context = text if len(usable) == 1 else ""
        recipients = []
        for r in usable:
            reason = r.diagnostic or text_reasons.get(r.address.lower(), "") or r.status or ""
            status_code = r.status or best_status(None, reason)
            code = r.code or find_code(reason)
            recipients.append(
                FailedRecipient(
                    r.address,
                    status_code,
                    code,
                    one_line(reason),
                    is_hard(status_code, code, reason, context),
                )
            )
        return Classified("bounce", tuple(recipients), ids, envelope, reason=_summary(recipients))
    delayed = [r for r in status.recipients if r.action == "delayed" and r.address]
    if delayed and not failed:
        recipients = [
            FailedRecipient(r.address, r.status, r.code, r.diagnostic, False) for r in delayed
        ]
        return Classified(
            "other",
            tuple(recipients),
            ids,
            envelope,
            reason="delivery delayed, still being retried (DSN Action: delayed)",
        )
    actions = {r.action for r in status.recipients}
    if actions and actions <= {"delivered", "relayed", "expanded"}:
        return Classified(
            "other",
            (),
            ids,
            envelope,
            reason=f"success notification (DSN Action: {', '.join(sorted(actions))})",
        )
    return None


def _from_text(message: Message, ids: tuple[str, ...], envelope: tuple[str, ...]) -> Classified:
    subject = header(message, "Subject")
    text = notification_text(message)
    bounce_like = _looks_like_bounce(message, subject, text)
    if bounce_like:
        exclude = {a.lower() for a in _own_addresses(message)}
        domain = addresses(headers(message, "From"))[:1]
        failures = text_failures(
            text, exclude, domain[0].rpartition("@")[2].lower() if domain else ""
        )
        delayed = looks_like_delay(subject, text)
        context = cut_at_returned_copy(text) if len(failures) == 1 else ""
        recipients = []
        for failure in failures:
            reason = failure.diagnostic
            status = best_status(None, reason)
            code = find_code(reason)
            if delayed and not status:
                status = "4.0.0"
            hard = not delayed and is_hard(status, code, reason, context)
            recipients.append(FailedRecipient(failure.address, status, code, reason, hard))
        if delayed:
            return Classified(
                "other",
                tuple(recipients),
                ids,
                envelope,
                reason=f"delivery delayed, still being retried: {subject!r}"[:200],
            )
        if recipients:
            return Classified(
                "bounce", tuple(recipients), ids, envelope, reason=_summary(recipients)
            )
    auto_reason = auto_reply_reason(message)
    if auto_reason and not bounce_like:
        return Classified("auto-reply", (), ids, envelope, reason=auto_reason)
    if bounce_like:
        return _bounce_without_address(subject, text, ids, envelope)
    return Classified("other", (), ids, envelope, reason=_not_a_report(message, subject))


def _bounce_without_address(
    subject: str, text: str, ids: tuple[str, ...], envelope: tuple[str, ...]
) -> Classified:
    """A delivery failure whose text names no recipient: keep the failure, address None,
    so VERP or the returned Message-ID can still attribute it."""
    notice = cut_at_returned_copy(text)[:3000]
    status = best_status(None, notice)
    code = find_code(notice)
    reason = one_line(notice.strip(), 300) or subject
    recipient = FailedRecipient(None, status, code, reason, is_hard(status, code, notice))
    return Classified(
        "bounce",
        (recipient,),
        ids,
        envelope,
        reason="delivery failure without a recipient address in it",
    )


def _looks_like_bounce(message: Message, subject: str, text: str) -> bool:
    sender = header(message, "From")
    if _BOUNCER.search(sender) or _BOUNCE_SUBJECT.search(subject):
        return True
    if content_type(message) == "multipart/report":
        return True
    return bool(_BOUNCE_BODY.search(text[:3000]))


def _not_a_report(message: Message, subject: str) -> str:
    kind = content_type(message)
    if not subject and not header(message, "From"):
        return "no From or Subject: not a delivery report"
    return one_line(f"not a delivery report or complaint ({kind}, subject {subject!r})", 200)


def _summary(recipients: list[FailedRecipient]) -> str:
    first = recipients[0]
    what = "hard" if first.hard else "soft"
    more = f" (+{len(recipients) - 1} more)" if len(recipients) > 1 else ""
    return one_line(f"{what} bounce {first.status or first.code or ''}: {first.reason}{more}", 300)


def _own_addresses(message: Message) -> list[str]:
    """Addresses that are never the failed recipient: the report's own. (Not the original's
    sender: in relayed and anonymised reports it can equal the recipient.)"""
    names = (
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Sender",
        "Return-Path",
        "Delivered-To",
        "X-Original-To",
        "Envelope-To",
    )
    return addresses([v for name in names for v in headers(message, name)])


def _envelope_to(message: Message) -> tuple[str, ...]:
    values = [v for name in _ENVELOPE_HEADERS for v in headers(message, name)]
    found = addresses(values)
    for returned in returned_headers(message):
        found += addresses(headers(returned, "Return-Path"))
    return _unique(tuple(found))


def _original_message_ids(message: Message, data: bytes) -> tuple[str, ...]:
    """Message-IDs of the returned original: returned header blocks, then any quoted
    `Message-ID:` line in the body, then In-Reply-To/References (auto-replies)."""
    own = header(message, "Message-ID").strip()
    found = [header(h, "Message-ID") for h in returned_headers(message)]
    head_and_body = data[:262144].replace(b"\r\n", b"\n")
    body = head_and_body.split(b"\n\n", 1)[1] if b"\n\n" in head_and_body else b""
    found += [m.decode("ascii", "replace") for m in _MESSAGE_ID.findall(body)]
    found += " ".join(headers(message, "In-Reply-To") + headers(message, "References")).split()
    ids = [i.strip() for i in found if i.strip().startswith("<") and i.strip() != own]
    return _unique(tuple(ids))


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    kept = []
    for value in values:
        if value.lower() not in seen:
            seen.add(value.lower())
            kept.append(value)
    return tuple(kept)
