"""RFC 3464 delivery status notifications: the message/delivery-status part, per recipient.

The stdlib parses message/delivery-status into one header block per paragraph (the first is
per-message). Some MTAs write it badly (no blank lines, a text/plain content type, fields
folded oddly), so the part is re-read from its text when the blocks make no sense.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from .mime import content_type, header, payload_text, walk
from .severity import best_status, find_code, one_line

_FIELD = re.compile(r"^([A-Za-z][\w-]*):[ \t]*(.*(?:\n[ \t]+.*)*)", re.M)


@dataclass(frozen=True)
class DsnRecipient:
    """One per-recipient block of a DSN, as written."""

    address: str | None
    action: str  # failed, delayed, delivered, relayed, expanded, or "" when missing
    status: str | None
    code: int | None
    diagnostic: str


@dataclass(frozen=True)
class DeliveryStatus:
    recipients: tuple[DsnRecipient, ...]
    envelope_senders: tuple[str, ...]  # per-message X-Postfix-Sender and the like


def _address(value: str) -> str | None:
    """`rfc822; <a@b>` -> `a@b`; None for non-Internet address types or no @."""
    _kind, _sep, addr = value.rpartition(";")
    addr = addr.strip().strip("<>").strip()
    addr = addr.strip("'\"")
    local = addr.rpartition("@")[0]
    if not local or " " in addr or ".." in local or local.startswith(".") or local.endswith("."):
        return None  # not an Internet address, or one a provider shortened ("david...@")
    return addr


def _blocks_of(part: Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    blocks: list[dict[str, str]] = []
    if isinstance(payload, list):
        for block in payload:
            if isinstance(block, Message):
                blocks.append({k.lower(): header(block, k) for k in block})
    if not any("final-recipient" in b or "original-recipient" in b for b in blocks):
        text = payload_text(part) if not isinstance(payload, list) else ""
        blocks = _blocks_from_text(text)
    return blocks


def _blocks_from_text(text: str) -> list[dict[str, str]]:
    """Split on every Final-/Original-Recipient pair, for DSNs without blank lines."""
    text = text.replace("\r\n", "\n")
    blocks: list[dict[str, str]] = [{}]
    for name, value in _FIELD.findall(text):
        key = name.lower()
        starts_recipient = key in ("final-recipient", "original-recipient")
        if starts_recipient and any(k in blocks[-1] for k in ("final-recipient", key)):
            blocks.append({})
        blocks[-1][key] = " ".join(value.split())
    return blocks


def _recipient(block: dict[str, str]) -> DsnRecipient:
    original = _address(block.get("original-recipient", ""))
    final = _address(block.get("final-recipient", ""))
    diagnostic = block.get("diagnostic-code", "")
    if ";" in diagnostic.split(" ")[0] or re.match(r"^[\w-]+ ?;", diagnostic):
        diagnostic = diagnostic.split(";", 1)[1]
    diagnostic = one_line(diagnostic)
    status = best_status(block.get("status"), diagnostic)
    return DsnRecipient(
        address=original or final,
        action=block.get("action", "").strip().lower().split(" ")[0],
        status=status,
        code=find_code(diagnostic),
        diagnostic=diagnostic,
    )


def read_delivery_status(message: Message) -> DeliveryStatus | None:
    """The per-recipient blocks of every delivery-status part, or None if the mail has none."""
    parts = [
        p
        for p in walk(message)
        if content_type(p) in ("message/delivery-status", "message/global-delivery-status")
    ]
    if not parts:
        return None
    recipients: list[DsnRecipient] = []
    senders: list[str] = []
    for part in parts:
        for block in _blocks_of(part):
            if "final-recipient" in block or "original-recipient" in block:
                recipients.append(_recipient(block))
            for key in ("x-postfix-sender", "x-original-sender", "original-envelope-sender"):
                sender = _address(block.get(key, ""))
                if sender:
                    senders.append(sender)
    return DeliveryStatus(tuple(recipients), tuple(senders))
