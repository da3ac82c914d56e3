"""A shared rendering and personal fields -> the bytes of one multipart/alternative message
(text/plain, then text/html).

The bytes are written directly with the stdlib's encoders (RFC 2047 for non-ASCII names and
subjects, quoted-printable bodies), rather than through `EmailMessage`: the generator would
fold a long `List-Unsubscribe` URL into encoded words, which mail clients then cannot use,
and it re-encodes every part for every subscriber. Here both parts are encoded once per
rendering (`body_template`) and each message only encodes its personal fields;
`tests/test_render.py` parses the result back with the stdlib parser.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.utils import format_datetime, formataddr, make_msgid

from ..caches import memo, register_mapping

TEST_PREFIX = "[TEST] "
CRLF = b"\r\n"


class NoDotLines(bytes):
    """Message bytes in which no line starts with "." (`build_message` makes them so). SMTP's
    dot-stuffing (RFC 5321 4.5.2) has nothing to do for them, and the SMTP sender skips looking
    for such lines in every message, which took a tenth of its time."""


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
    """`Ana Pérez <ana@example.org>`. A name that is not short printable ASCII is written as
    RFC 2047 encoded words of at most 75 characters, folded over lines of at most 76, so no
    control character reaches the header and no line grows past what servers take."""
    _check_header("address", name + address)
    if not name:
        return address
    if name.isprintable() and len(name) <= 60 and (name.isascii() or len(name.encode()) <= 45):
        # As it is, or (not ASCII) one encoded word of at most 72 characters.
        return formataddr((name, address), charset="utf-8")
    words = Header(name, "utf-8", maxlinelen=76, header_name="From").encode(linesep="\r\n")
    last = words.rsplit("\r\n", 1)[-1]
    return words + ("\r\n " if len(last) + len(address) > 72 else " ") + f"<{address}>"


@memo(maxsize=256)
def encode_text_header(value: str) -> str:
    """An unstructured header value (Subject), folded over lines of at most 76 characters,
    RFC 2047-encoded when it is not printable ASCII or has a word too long to fold."""
    _check_header("Subject", value)
    if value.isascii() and value.isprintable() and len(value) <= 66:
        return value
    plain = value.isascii() and value.isprintable() and max(map(len, value.split())) <= 60
    return Header(
        value, "us-ascii" if plain else "utf-8", maxlinelen=76, header_name="Subject"
    ).encode(linesep="\r\n")


def quoted_printable(text: str) -> bytes:
    """UTF-8 text as quoted-printable with CRLF line ends (lines of at most 76 characters)."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", CRLF)


def _segment(text: str) -> bytes:
    """Text as a quoted-printable segment that ends with a line break (soft, "=" CRLF, when
    the text does not end with one) and in which no line starts with "."."""
    return _escape_leading_dots(_end_with_soft_break(quoted_printable(text)))


def _escape_leading_dots(encoded: bytes) -> bytes:
    """A "." that starts a line written "=2E" (splitting the line if it grows too long), so
    a message's lines never start with "." and SMTP has no dot-stuffing to do."""
    if not (encoded.startswith(b".") or b"\n." in encoded):
        return encoded
    lines: list[bytes] = []
    for line in encoded.split(CRLF):
        while line.startswith(b"."):
            line = b"=2E" + line[1:]
            if len(line) <= 76:
                break
            cut = 75  # 75 characters and a soft break; never inside an "=XX" escape
            while b"=" in line[cut - 2 : cut]:
                cut -= 1
            lines.append(line[:cut] + b"=")
            line = line[cut:]
        lines.append(line)
    return CRLF.join(lines)


def _end_with_soft_break(encoded: bytes) -> bytes:
    """Close a segment that stops mid-line with a soft line break ("=" CRLF), keeping every
    line within 76 characters and never splitting an "=XX" escape."""
    if not encoded or encoded.endswith(CRLF):
        return encoded
    start = encoded.rfind(CRLF) + 2 if CRLF in encoded else 0
    last = encoded[start:]
    if len(last) > 75:
        cut = 73
        while b"=" in last[cut - 2 : cut]:
            cut -= 1
        encoded = encoded[: start + cut] + b"=" + CRLF + last[cut:]
    return encoded + b"=" + CRLF


@dataclass(frozen=True)
class BodyTemplate:
    """Both parts quoted-printable-encoded once per rendering, with the personal fields left as
    placeholders between soft line breaks: a message is then a join, not a re-encoding."""

    text: tuple[bytes | str, ...]
    html: tuple[bytes | str, ...]


def _qp_segments(content: str, placeholders: tuple[str, ...]) -> tuple[bytes | str, ...]:
    """One piece encoded, each placeholder left in its place between soft line breaks."""
    pattern = re.compile("(" + "|".join(re.escape(p) for p in placeholders) + ")")
    pieces = pattern.split(content)
    result: list[bytes | str] = []
    for number, piece in enumerate(pieces):
        if number % 2:
            result.append(piece)  # a placeholder, filled in per message
        elif piece:
            result.append(_segment(piece))
    return tuple(result)


# Pieces (a story's section, a heading) recur across digests: each is encoded once per run.
_encoded_pieces: OrderedDict[tuple[str, tuple[str, ...]], tuple[bytes | str, ...]] = OrderedDict()
PIECES_KEPT = 4096
register_mapping("digest.compose.mime.encoded_pieces", _encoded_pieces)


def _encode_piece(piece: str, placeholders: tuple[str, ...]) -> tuple[bytes | str, ...]:
    key = (piece, placeholders)
    encoded = _encoded_pieces.get(key)
    if encoded is None:
        encoded = _encoded_pieces[key] = _qp_segments(piece, placeholders)
        if len(_encoded_pieces) > PIECES_KEPT:
            _encoded_pieces.popitem(last=False)
    return encoded


def body_template(
    text: str, html_pieces: tuple[str, ...], placeholders: tuple[str, ...]
) -> BodyTemplate:
    """Both parts as quoted-printable segments. The HTML comes in pieces (the compiled frame
    and sections); each piece starts on a fresh encoded line, so a piece met before is reused
    as it was encoded."""
    html: list[bytes | str] = []
    for piece in html_pieces:
        html.extend(_encode_piece(piece, placeholders))
    plain: list[bytes | str] = []
    for block in _blocks(text):
        plain.extend(_encode_piece(block, placeholders))
    return BodyTemplate(_merged(plain), tuple(html))


def _merged(parts: list[bytes | str]) -> tuple[bytes | str, ...]:
    """Encoded blocks that follow one another joined, so a message joins a few parts rather
    than every block of the text. (The HTML's pieces stay apart: they are larger, and shared
    by the renderings that hold them.)"""
    result: list[bytes | str] = []
    run: list[bytes] = []
    for part in parts:
        if isinstance(part, bytes):
            run.append(part)
            continue
        if run:
            result.append(b"".join(run))
            run.clear()
        result.append(part)
    if run:
        result.append(b"".join(run))
    return tuple(result)


def _blocks(text: str) -> list[str]:
    """The text cut after each blank line. Quoted-printable encodes line by line, so blocks
    encoded one by one give the text's own encoding, and a story's blocks recur across
    digests (encoding a whole text part took more time than rendering it)."""
    blocks = text.split("\n\n")
    return [block + "\n\n" for block in blocks[:-1]] + ([blocks[-1]] if blocks[-1] else [])


def encode_value(value: str) -> bytes:
    """A personal field as a quoted-printable line of its own, ended by a soft line break.
    Most are short plain ASCII (an address, a plain name) and come out as they are."""
    plain = value.isascii() and value.isprintable() and "=" not in value
    if plain and 0 < len(value) < 70 and value[-1] != " " and value[0] != ".":
        return value.encode("ascii") + b"=\r\n"
    return _encoded_value(value)


@memo(maxsize=4096)
def _encoded_value(value: str) -> bytes:
    """Remembered: a reader's regions and topics in Spanish or French ("Centroamérica,
    Salud") are the same for many readers, and each is encoded in both parts."""
    return _segment(value)


def _fill(parts: tuple[bytes | str, ...], values: dict[str, str], known: dict[str, bytes]) -> bytes:
    """The parts joined, each placeholder replaced by its value encoded. `known` holds the
    values encoded so far in this message: a link is the same in both parts, and encoding
    one took longer than making its token."""
    encoded: dict[str, bytes] = {}
    for part in parts:
        if isinstance(part, str) and part not in encoded:
            value = values[part]
            found = known.get(value)
            if found is None:
                found = known[value] = encode_value(value)
            encoded[part] = found
    return b"".join(encoded[part] if isinstance(part, str) else part for part in parts)


def boundary_for(message_id: str) -> str:
    return "=_digest_" + hashlib.sha256(message_id.encode()).hexdigest()[:24]


@memo(maxsize=64)
def _sender_header(name: str, address: str) -> str:
    return encode_address(name, address)


@memo(maxsize=64)
def _list_id_header(list_name: str, list_id: str) -> str:
    """`List-Id: phrase <list-id>` (RFC 2919): only the name, a phrase, is encoded (in words
    of at most 75 characters), so filters always find `<list-id>` as it is written."""
    return encode_address(list_name, list_id)


@memo(maxsize=64)
def _date_header(now: datetime) -> str:
    return format_datetime(now)  # a run's messages share one date


def build_message(
    *,
    subject: str,
    body: BodyTemplate,
    text_values: dict[str, str],
    html_values: dict[str, str],
    to_name: str,
    to_email: str,
    sender: Address,
    message_id: str,
    unsubscribe_url: str,
    list_id: str,
    list_name: str,
    now: datetime,
    test: bool = False,
    feedback_id: str | None = None,
    language: str | None = None,
) -> bytes:
    """One message's bytes, in which no line starts with "." (see `NoDotLines`). Raises
    ValueError on a line break in any header value. `language`: its Content-Language."""
    if test:
        message_id = make_msgid(domain=sender.domain)
    boundary = boundary_for(message_id)
    headers = [
        ("From", _sender_header(sender.display_name, sender.addr_spec)),
        ("To", encode_address(to_name, to_email)),
        ("Subject", encode_text_header((TEST_PREFIX if test else "") + subject)),
        ("Date", _date_header(now)),
        ("Message-ID", _check_header("Message-ID", message_id)),
        ("List-Id", _list_id_header(list_name, list_id)),
        ("List-Unsubscribe", _check_header("List-Unsubscribe", f"<{unsubscribe_url}>")),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        *((("Feedback-ID", _check_header("Feedback-ID", feedback_id)),) if feedback_id else ()),
        *((("Content-Language", _check_header("Content-Language", language)),) if language else ()),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")
    separator = f"--{boundary}\r\n".encode()
    known: dict[str, bytes] = {}
    return NoDotLines(
        b"".join(
            (
                head,
                CRLF,
                separator,
                b'Content-Type: text/plain; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                _fill(body.text, text_values, known),
                CRLF,
                separator,
                b'Content-Type: text/html; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                _fill(body.html, html_values, known),
                CRLF,
                f"--{boundary}--\r\n".encode(),
            )
        )
    )
