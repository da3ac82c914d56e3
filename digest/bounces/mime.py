"""Reading a raw mail without ever raising: parse, decode headers, pull out readable text.

Bounces come from every MTA ever written: broken MIME, 8-bit headers in unknown charsets,
base64 HTML, NUL bytes. Everything here degrades to "less text" rather than an exception.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import html
import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message

MAX_PARSED_BYTES = 512 * 1024  # the report is at the start; a returned original can be huge
MAX_TEXT_CHARS = 64 * 1024  # of readable text per mail, enough for any notification

_PARSER = email.parser.BytesParser(policy=email.policy.compat32)
_HEADER_PARSER = email.parser.HeaderParser(policy=email.policy.compat32)
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)
_BLOCK_TAG = re.compile(r"<\s*(br|/p|/div|/tr|/li|/h\d|/table)\b[^>]*>", re.I)


def parse_mail(data: bytes) -> Message:
    """The parsed mail (compat32: fast and forgiving). Mails past MAX_PARSED_BYTES are cut."""
    if len(data) > MAX_PARSED_BYTES:
        data = data[:MAX_PARSED_BYTES]
    return _PARSER.parsebytes(data)


def parse_headers(text: str) -> Message:
    """A header block (text/rfc822-headers, a quoted original) as a Message."""
    return _HEADER_PARSER.parsestr(text)


def header(message: Message, name: str) -> str:
    """One header as readable text ('' when absent), RFC 2047 decoded, never raising."""
    value = message.get(name)
    return _header_text(value) if value is not None else ""


def headers(message: Message, name: str) -> list[str]:
    return [_header_text(v) for v in message.get_all(name) or []]


def _header_text(value: object) -> str:
    try:
        text = str(make_header(decode_header(str(value))))
    except Exception:  # any malformed encoded-word or charset: keep the raw text
        text = str(value)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(text.split())


def addresses(values: list[str]) -> list[str]:
    """The addr-specs in header values, in order, without duplicates."""
    found: list[str] = []
    for _name, addr in email.utils.getaddresses(values):
        addr = addr.strip().strip("<>")
        if "@" in addr and addr.lower() not in (a.lower() for a in found):
            found.append(addr)
    return found


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def payload_text(part: Message) -> str:
    """A leaf part's payload decoded to text: transfer encoding, then charset (utf-8 fallback)."""
    try:
        raw = part.get_payload(decode=True)
    except Exception:
        raw = None
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = "utf-8"
    try:
        charset = part.get_content_charset() or "utf-8"
        text = raw.decode(charset, "replace")
    except (LookupError, ValueError):
        text = raw.decode("utf-8", "replace")
    return text[:MAX_TEXT_CHARS]


def html_to_text(markup: str) -> str:
    markup = _BLOCK_TAG.sub("\n", markup)
    return html.unescape(_TAG.sub(" ", markup))


def walk(message: Message) -> Iterator[Message]:
    """Every part, not descending into returned messages (their text is not the report's)."""
    stack = [message]
    while stack:
        part = stack.pop()
        yield part
        if content_type(part) in ("message/rfc822", "text/rfc822-headers"):
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))


def notification_text(message: Message) -> str:
    """The human-readable report: the text/plain parts (or HTML made text) outside any
    returned message. For a non-MIME mail, its whole body."""
    plain: list[str] = []
    markup: list[str] = []
    for part in walk(message):
        kind = content_type(part)
        if part.is_multipart() or kind.startswith("message/"):
            continue
        if kind == "text/html":
            markup.append(payload_text(part))
        elif kind.startswith("text/") and kind != "text/rfc822-headers" or part is message:
            plain.append(payload_text(part))
        if sum(map(len, plain)) > MAX_TEXT_CHARS:
            break
    text = "\n".join(plain) if plain else html_to_text("\n".join(markup))
    return text.replace("\r\n", "\n").replace("\r", "\n")[:MAX_TEXT_CHARS]


def returned_headers(message: Message) -> list[Message]:
    """The header blocks of returned originals: message/rfc822 and text/rfc822-headers parts."""
    found: list[Message] = []
    for part in walk(message):
        kind = content_type(part)
        if kind == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found.append(inner)
            elif isinstance(payload, str):
                found.append(parse_headers(payload))
        elif kind == "text/rfc822-headers":
            found.append(parse_headers(payload_text(part)))
    return found
