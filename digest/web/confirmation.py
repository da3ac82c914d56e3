"""The sign-up confirmation email: a short plain-text message with a signed link."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from email.utils import format_datetime, make_msgid

from ..clock import utcnow
from ..compose import make_token
from ..compose.mime import encode_address, encode_text_header, quoted_printable
from ..delivery import open_sender, send_with_retries
from .site import Site


def lifetime(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return f"{max(1, round(hours * 60))} minutes"
    if hours <= 72:
        return f"{round(hours)} hours"
    return f"{round(hours / 24)} days"


def confirmation_message(site: Site, email: str, name: str, url: str, now: datetime) -> bytes:
    """A short plain-text email with the confirmation link."""
    sender = site.settings.sender_address
    text = "\n".join(
        [
            f"Hello {name}," if name else "Hello,",
            "",
            f"Someone, probably you, asked to receive {site.list_name} at {email}.",
            "To confirm, open this link and press Confirm "
            f"(it works for {lifetime(site.settings.web.confirm_within)}):",
            "",
            url,
            "",
            "If you did not ask for this, ignore this email: nothing will be sent to you.",
            "",
            f"-- {site.list_name}",
            "",
        ]
    )
    headers = [
        ("From", encode_address(sender.display_name, sender.addr_spec)),
        ("To", encode_address(name, email)),
        ("Subject", encode_text_header(f"Please confirm your subscription to {site.list_name}")),
        ("Date", format_datetime(now)),
        ("Message-ID", make_msgid(domain=sender.domain)),
        ("Auto-Submitted", "auto-generated"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", "quoted-printable"),
    ]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("ascii")
    return head + b"\r\n" + quoted_printable(text)


def send_confirmation(site: Site, email: str, name: str) -> None:
    settings = site.settings
    expires = time.time() + settings.web.confirm_within.total_seconds()
    token = make_token(site.secret, "confirm", email, expires)
    url = site.public_origin + site.path("confirm", token=token)
    data = confirmation_message(site, email, name, url, utcnow())
    if site.signer is not None:
        data = site.signer.sign(data)
    sender = open_sender(settings.delivery)
    smtp = settings.delivery.smtp
    try:
        # The person is waiting for the page: a short retry, not the send's long backoff.
        send_with_retries(
            sender,
            settings.sender_address.addr_spec,
            email,
            data,
            min(smtp.retries, 1),
            min(smtp.retry_backoff, 1.0),
        )
    finally:
        sender.close()
