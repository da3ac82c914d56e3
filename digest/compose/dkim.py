"""DKIM signing with dkimpy, the key taken from the environment (or a file outside the repo)."""

from __future__ import annotations

import os

import dkim

from ..errors import DeliveryConfigError
from ..settings import DkimSettings
from .mime import NoDotLines

# Signed so that no relay can alter them; List-Unsubscribe(-Post) too, as Gmail and Yahoo ask.
SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)


class DkimSigner:
    def __init__(self, settings: DkimSettings, key: bytes) -> None:
        self.selector = settings.selector.encode()
        self.domain = settings.domain.encode()
        self.key = key
        self.sign(b"From: check@example.org\r\nSubject: check\r\n\r\ncheck\r\n")  # fail early

    def sign(self, data: bytes) -> bytes:
        try:
            header = dkim.sign(
                data,
                self.selector,
                self.domain,
                self.key,
                canonicalize=(b"relaxed", b"simple"),
                include_headers=list(SIGNED_HEADERS),
            )
        except (dkim.DKIMException, ValueError) as exc:
            raise DeliveryConfigError(
                f"DKIM signing failed: {exc}",
                hint="check that the key in dkim.private_key_env / private_key_path is an RSA "
                "private key in PEM form",
            ) from exc
        signed = header + data
        # The header's lines start with its name or with folding white space, never with ".":
        # signing keeps what `NoDotLines` promises.
        return NoDotLines(signed) if isinstance(data, NoDotLines) else signed


def load_signer(settings: DkimSettings | None) -> tuple[DkimSigner | None, str | None]:
    """The signer, or None with a warning when DKIM is configured but its key is missing."""
    if settings is None:
        return None, None
    key: bytes | None = None
    if settings.private_key_env and os.environ.get(settings.private_key_env):
        key = os.environ[settings.private_key_env].encode()
    elif settings.private_key_path is not None:
        key = settings.private_key_path.read_bytes()
    if key is None:
        return None, (
            f"dkim is set but ${settings.private_key_env} is empty: messages go out unsigned"
        )
    return DkimSigner(settings, key), None
