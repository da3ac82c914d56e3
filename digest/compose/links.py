"""HMAC-signed tokens naming one subscriber and one purpose, so no link can be forged.

    token = base64url(payload) "." base64url(HMAC-SHA256(secret, purpose | payload))
    payload = JSON [email, expires_at or 0]

The purpose (unsubscribe, preferences, confirm) is signed but not written in the token: an
unsubscribe token cannot be replayed as a preferences token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time


class BadToken(ValueError):
    """Tampered, expired, malformed, or made for another purpose."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, purpose: str, payload: bytes) -> bytes:
    return hmac.new(secret, purpose.encode() + b"|" + payload, hashlib.sha256).digest()[:20]


def make_token(secret: bytes, purpose: str, email: str, expires_at: float | None = None) -> str:
    payload = json.dumps([email, int(expires_at or 0)], separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_signature(secret, purpose, payload))}"


def read_token(secret: bytes, purpose: str, token: str, now: float | None = None) -> str:
    """The address the token was made for. Raises BadToken."""
    try:
        payload_text, signature_text = token.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except (ValueError, TypeError) as exc:
        raise BadToken("malformed token") from exc
    if not hmac.compare_digest(signature, _signature(secret, purpose, payload)):
        raise BadToken("the token's signature does not match")
    try:
        email, expires_at = json.loads(payload)
    except (ValueError, TypeError) as exc:
        raise BadToken("malformed token") from exc
    if expires_at and (now if now is not None else time.time()) > expires_at:
        raise BadToken("the link has expired")
    return str(email)


def link_with_token(base_url: str, token: str) -> str:
    return f"{base_url}{'&' if '?' in base_url else '?'}token={token}"
