"""VERP envelope senders: `bounces+TOKEN@domain`, so a bounce names its delivery by itself.

    TOKEN = base32-lowercase(delivery_id as big-endian bytes || MAC), no padding
    MAC   = HMAC-SHA256(secret, b"verp|" + delivery_id + b"|" + casefold(subscriber))[:8]

The delivery id alone is in the token (a subscriber's address would not fit in the 64 octets of
a local part); the MAC also covers the subscriber, so a token stays bound to the address it was
made for even if the state were rebuilt and delivery ids reused. Verifying therefore needs the
delivery's subscriber, which the caller looks up in the state: `read_verp` takes that lookup.

Lowercase base32 because some MTAs lowercase local parts; reading lowercases first.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from .. import base32

MAC_BYTES = 8  # 64 bits: far beyond what anyone can forge by mailing guesses
LOCAL_PART_LIMIT = 64  # RFC 5321, section 4.5.3.1.1


class BadVerpToken(ValueError):
    """A VERP address of our return path whose token is malformed, unknown or forged.

    The caller records such a bounce as unattributed and changes nobody.
    """


@dataclass(frozen=True)
class VerpToken:
    """A verified token: the delivery the bounce belongs to, and that delivery's subscriber."""

    delivery_id: int
    subscriber: str


def _split(address: str) -> tuple[str, str]:
    address = address.strip().strip("<>").strip()
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        raise ValueError(f"not an email address: {address!r}")
    return local, domain


def _mac(secret: bytes, delivery_id: int, subscriber: str) -> bytes:
    message = b"verp|%d|" % delivery_id + subscriber.strip().casefold().encode()
    return hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]


def _id_bytes(delivery_id: int) -> bytes:
    """The delivery id as the fewest big-endian bytes (at least one)."""
    return delivery_id.to_bytes(max(1, (delivery_id.bit_length() + 7) // 8), "big")


def verp_address(return_path: str, subscriber: str, delivery_id: int, secret: bytes) -> str:
    """The envelope sender for one delivery, e.g. `bounces+aeaqe2lsm5ie4dja@example.org`.

    Raises ValueError when the return path is not an address, the id is negative, or the
    local part would exceed 64 octets.
    """
    if delivery_id < 0:
        raise ValueError(f"delivery id must not be negative: {delivery_id}")
    local, domain = _split(return_path)
    token = base32.encode(_id_bytes(delivery_id) + _mac(secret, delivery_id, subscriber))
    verp_local = f"{local}+{token}"
    if len(verp_local.encode()) > LOCAL_PART_LIMIT:
        raise ValueError(
            f"the VERP local part {verp_local!r} is longer than {LOCAL_PART_LIMIT} octets: "
            "use a shorter return_path local part"
        )
    return f"{verp_local}@{domain}"


def verp_token_of(address: str, return_path: str) -> str | None:
    """The raw TOKEN of `address` if it is `LOCAL+TOKEN@domain` of this return path, else None.

    Local part and domain are compared case-insensitively.
    """
    try:
        local, domain = _split(address)
        base_local, base_domain = _split(return_path)
    except ValueError:
        return None
    prefix = base_local.casefold() + "+"
    if domain.casefold() != base_domain.casefold() or not local.casefold().startswith(prefix):
        return None
    return local[len(prefix) :].lower()


def read_verp(
    address: str,
    return_path: str,
    secret: bytes,
    subscriber_of: Callable[[int], str | None],
) -> VerpToken | None:
    """The delivery and subscriber a bounce sent to `address` belongs to.

    None when `address` is not a VERP address of `return_path` (the caller then attributes
    by DSN recipients and Message-IDs). Raises BadVerpToken when it is one but the token is
    malformed, names a delivery `subscriber_of` does not know, or its MAC does not verify.
    `subscriber_of(delivery_id)` returns that delivery's subscriber from the state, or None.
    """
    token = verp_token_of(address, return_path)
    if token is None:
        return None
    try:
        raw = base32.decode(token)
    except ValueError as exc:
        raise BadVerpToken(f"malformed VERP token {token!r}") from exc
    if not MAC_BYTES < len(raw) <= MAC_BYTES + 8:
        raise BadVerpToken(f"VERP token {token!r} has the wrong length")
    delivery_id = int.from_bytes(raw[:-MAC_BYTES], "big")
    subscriber = subscriber_of(delivery_id)
    if subscriber is None:
        raise BadVerpToken(f"VERP token {token!r} names unknown delivery {delivery_id}")
    if not hmac.compare_digest(raw[-MAC_BYTES:], _mac(secret, delivery_id, subscriber)):
        raise BadVerpToken(f"VERP token {token!r} does not verify for delivery {delivery_id}")
    return VerpToken(delivery_id=delivery_id, subscriber=subscriber)


class VerpSigner:
    """`verp_address` for one return path and secret, made once per run: per message, one
    HMAC (from a copy of the keyed state) and one base32, a few microseconds.

    Example: VerpSigner("bounces@example.org", secret).address("ana@example.org", 42)
    == verp_address("bounces@example.org", "ana@example.org", 42, secret)
    """

    def __init__(self, return_path: str, secret: bytes) -> None:
        local, domain = _split(return_path)
        self.prefix, self.suffix = f"{local}+", f"@{domain}"
        self.keyed = hmac.new(secret, b"verp|", hashlib.sha256)
        verp_address(return_path, "", 2**63 - 1, secret)  # the longest: raises if too long

    def address(self, subscriber: str, delivery_id: int) -> str:
        if delivery_id < 0 or delivery_id >= 2**63:
            raise ValueError(f"delivery id out of range: {delivery_id}")
        mac = self.keyed.copy()
        mac.update(b"%d|" % delivery_id + subscriber.strip().casefold().encode())
        token = base32.encode(_id_bytes(delivery_id) + mac.digest()[:MAC_BYTES])
        return f"{self.prefix}{token}{self.suffix}"
