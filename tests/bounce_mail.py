"""Bounce mails for the tests of `digest bounces`: the committed samples (real Postfix bounces,
and reports written after the providers' formats) with their envelope address, failed
recipient and returned Message-ID swapped for the ones a test needs."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "bounces"
SECRET = "bounce-test-secret"
RETURN_PATH = "bounces@example.org"

_VERP = re.compile(rb"bounces\+[a-z0-9]+@digest\.test")
_RETURNED_ID = re.compile(rb"<digest-\d+\.week48@digest\.test>")
# Each sample's failed recipient (or complainant), as the sample names it.
FAILED = {
    "postfix/remote-user-unknown.eml": b"unknown@remote.test",
    "postfix/remote-mailbox-full.eml": b"full@remote.test",
    "written/arf-yahoo-abuse.eml": b"martina.flores@yahoo.test",
    "written/autoreply-rfc3834.eml": b"",
}


def bounce_mail(
    sample: str,
    envelope: str | None = None,
    recipient: str | None = None,
    message_id: str | None = None,
    nonce: str = "",
) -> bytes:
    """`sample` (e.g. "postfix/remote-user-unknown.eml") sent to `envelope` (its VERP address
    replaced), about `recipient` and the digest `message_id`. `nonce` makes the mail distinct
    (another Received line), so it is not the same mail read twice."""
    data = (DATA / sample).read_bytes()
    data = _VERP.sub((envelope or "digest@example.org").encode(), data)
    failed = FAILED.get(sample)
    if recipient is not None and failed:
        data = data.replace(failed, recipient.encode())
    if message_id is not None:
        data = _RETURNED_ID.sub(message_id.encode(), data)
    if nonce:
        data = f"Received: from relay-{nonce}.test by mx.example.org\n".encode() + data
    return data


def deliveries(state: Path) -> dict[str, tuple[int, str]]:
    """Each subscriber's latest delivery: id and Message-ID."""
    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT subscriber, id, message_id FROM deliveries ORDER BY id")
        return {subscriber: (i, message_id) for subscriber, i, message_id in rows}


def subscriber_of(state: Path):
    def lookup(delivery_id: int) -> str | None:
        with sqlite3.connect(state) as db:
            row = db.execute(
                "SELECT subscriber FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
        return row[0] if row else None

    return lookup


def drop(maildir: Path, name: str, data: bytes) -> Path:
    """Deliver a mail into a Maildir's new/ as an MDA would (tmp/, then a rename)."""
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    temporary = maildir / "tmp" / name
    temporary.write_bytes(data)
    target = maildir / "new" / name
    temporary.rename(target)
    return target
