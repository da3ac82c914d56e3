"""RenderedEmail -> the bytes of one multipart/alternative message (text/plain, then text/html).

The bytes are written directly with the stdlib's encoders (RFC 2047 for non-ASCII names and
subjects, quoted-printable bodies), rather than through `EmailMessage`: the generator would
fold a long `List-Unsubscribe` URL into encoded words, which mail clients then cannot use,
and it re-encodes every part for every subscriber. `tests/test_message.py` parses the result
back with the stdlib parser.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.utils import format_datetime, formataddr, make_msgid

from .models import RenderedEmail

TEST_PREFIX = "[TEST] "
CRLF = b"\r\n"


def stable_message_id(email: str, item_ids: Iterable[str], domain: str) -> str:
    """The same subscriber and items always give the same Message-ID, so a resent copy of a
    message the server already accepted can be recognised as a duplicate."""
    key = email.casefold() + "\0" + "\0".join(sorted(item_ids))
    return f"<digest.{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def _check_header(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} may not contain a line break: {value!r}")
    return value


def encode_address(name: str, address: str) -> str:
    """`Ana Pérez <ana@example.org>` with the name RFC 2047-encoded when it is not ASCII."""
    _check_header("address", name + address)
    return formataddr((name, address), charset="utf-8") if name else address


def encode_text_header(value: str) -> str:
    """An unstructured header value (Subject), encoded and folded when needed."""
    _check_header("Subject", value)
    if value.isascii() and len(value) < 900:
        return Header(value, "us-ascii", maxlinelen=998).encode()
    return Header(value, "utf-8").encode(linesep="\r\n")


def quoted_printable(text: str) -> bytes:
    """UTF-8 text as quoted-printable with CRLF line ends (lines of at most 76 characters)."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", CRLF)


def boundary_for(message_id: str) -> str:
    return "=_digest_" + hashlib.sha256(message_id.encode()).hexdigest()[:24]


def build_message(
    rendered: RenderedEmail,
    *,
    sender: Address,
    message_id: str,
    unsubscribe_url: str,
    list_id: str,
    list_name: str,
    now: datetime,
    test: bool = False,
) -> bytes:
    """The message's bytes. Raises ValueError on a line break in any header value."""
    subscriber = rendered.subscriber
    if test:
        message_id = make_msgid(domain=sender.domain)
    boundary = boundary_for(message_id)
    headers = [
        ("From", encode_address(sender.display_name, sender.addr_spec)),
        ("To", encode_address(subscriber.name, subscriber.email)),
        ("Subject", encode_text_header((TEST_PREFIX if test else "") + rendered.subject)),
        ("Date", format_datetime(now)),
        ("Message-ID", _check_header("Message-ID", message_id)),
        ("List-Id", encode_text_header(f"{list_name} <{list_id}>")),
        ("List-Unsubscribe", _check_header("List-Unsubscribe", f"<{unsubscribe_url}>")),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")
    parts = [
        head,
        CRLF,
        f"--{boundary}\r\n".encode(),
        b'Content-Type: text/plain; charset="utf-8"\r\n',
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        quoted_printable(rendered.text),
        CRLF,
        f"--{boundary}\r\n".encode(),
        b'Content-Type: text/html; charset="utf-8"\r\n',
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        quoted_printable(rendered.html),
        CRLF,
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)
