"""DKIM signing with dkimpy, the key taken from the environment (or a file outside the repo)."""

from __future__ import annotations

import os

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
    b"Feedback-ID",  # Gmail counts it only when the sending domain's signature covers it
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
        import dkim  # dkimpy and dnspython (14 MB), only in a process that signs

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


def missing_key(settings: DkimSettings) -> str | None:
    """Why a configured DKIM has no key to sign with, or None when it has one."""
    if settings.private_key_env and os.environ.get(settings.private_key_env):
        return None
    if settings.private_key_path is not None:
        return (
            None
            if settings.private_key_path.is_file()
            else (f"dkim.private_key_path {settings.private_key_path} does not exist")
        )
    return f"dkim is set but ${settings.private_key_env} is empty"


def load_signer(
    settings: DkimSettings | None, required: bool = False
) -> tuple[DkimSigner | None, str | None]:
    """The signer, or None with a warning when DKIM is configured but its key is missing.
    `required` (SMTP delivery: the messages reach real inboxes) makes a missing key an
    error rather than let them go out unsigned, failing DMARC."""
    if settings is None:
        return None, None
    problem = missing_key(settings)
    if problem is not None:
        if required:
            raise DeliveryConfigError(
                f"{problem}: messages would go out unsigned, and fail DMARC",
                hint=f"set ${settings.private_key_env} (or dkim.private_key_path) to the PEM "
                "private key, or remove the dkim section",
            )
        return None, f"{problem}: messages go out unsigned"
    if settings.private_key_env and os.environ.get(settings.private_key_env):
        key = os.environ[settings.private_key_env].encode()
    else:
        assert settings.private_key_path is not None
        key = settings.private_key_path.read_bytes()
    return DkimSigner(settings, key), None


def aligned(dkim_domain: str, from_domain: str) -> bool:
    """Whether DMARC's relaxed alignment holds, as far as can be told without the public
    suffix list: the same domain, or one a subdomain of the other."""
    signing, sender = dkim_domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return signing == sender or sender.endswith("." + signing) or signing.endswith("." + sender)
