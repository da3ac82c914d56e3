"""Lower-case base32 without padding (a-z, 2-7): the text of tokens that must be one word to a
spam filter (link tokens) or survive a change of case (VERP addresses)."""

from __future__ import annotations

import base64

ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def encode(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def decode(text: str) -> bytes:
    """Raises binascii.Error (a ValueError) on text that is not base32."""
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
