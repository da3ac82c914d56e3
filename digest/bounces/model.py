"""What classifying one mail yields: plain frozen values, ready for the state and for --json."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Kind = Literal["bounce", "complaint", "auto-reply", "other"]


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a bounce says failed.

    `address` is None when the report shows a failure but not for whom (some Exchange and
    web-mail reports); VERP or the returned Message-ID can still attribute it.
    `hard` is True only when the address itself is bad (user unknown, no such domain,
    mailbox disabled); refusals, full mailboxes and expiries are soft.
    """

    address: str | None
    status: str | None  # RFC 3463 enhanced status, e.g. "5.1.1"
    code: int | None  # SMTP reply code, e.g. 550
    reason: str  # the diagnostic, on one line
    hard: bool


@dataclass(frozen=True)
class Classified:
    """The reading of one mail.

    - kind: "bounce" (a delivery failed for good), "complaint" (an ARF feedback report),
      "auto-reply" (out of office, RFC 3834) or "other" (anything else, `reason` says why:
      a delay warning, a success notice, not a report at all, unreadable).
    - recipients: the failed recipients of a bounce; for a delay warning (kind "other"),
      the delayed ones, all soft.
    - original_message_ids: Message-IDs of the returned original, to match deliveries.
    - envelope_to: every address the report was sent to or names as the original envelope
      sender (To, Delivered-To, X-Original-To, the returned Return-Path...): where a VERP
      address `bounces+TOKEN@domain` shows up.
    - complaint_recipient: for a complaint, who complained (Original-Rcpt-To,
      Removal-Recipient, or the To of the returned message).
    - feedback_type: for a feedback report, its Feedback-Type (abuse, fraud, ...).
    - reason: one line; for "other" why it is not a bounce, else a summary.
    """

    kind: Kind
    recipients: tuple[FailedRecipient, ...] = ()
    original_message_ids: tuple[str, ...] = ()
    envelope_to: tuple[str, ...] = ()
    complaint_recipient: str | None = None
    feedback_type: str | None = None
    reason: str = ""

    @property
    def hard(self) -> bool:
        """True when any failed recipient is a hard failure."""
        return any(r.hard for r in self.recipients)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields as plain dicts and lists."""
        data = asdict(self)
        for key in ("recipients", "original_message_ids", "envelope_to"):
            data[key] = list(data[key])
        return data
