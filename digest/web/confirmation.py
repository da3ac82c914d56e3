"""The sign-up confirmation email: a short plain-text message with a signed link.

Anyone can ask for it to be sent to any address, so it carries nothing the asker wrote: no
name (it would let strangers put their words, "Claim your prize at ...", into our mail), only
the address it goes to and the link. The link is signed for this one sign-up (its id), so it
confirms neither a later sign-up of the same address nor anything else."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from email.utils import format_datetime, make_msgid

from ..clock import utcnow
from ..compose import make_token
from ..compose.i18n import ENGLISH, Localiser, N_plural
from ..compose.mime import encode_address, encode_text_header, quoted_printable
from ..delivery import open_sender, send_with_retries
from .site import Site


def lifetime(delta: timedelta, words: Localiser = ENGLISH) -> str:
    """'48 hours', '30 minutes', '7 days' in the reader's language."""
    hours = delta.total_seconds() / 3600
    if hours < 1:
        count, forms = max(1, round(hours * 60)), N_plural("%(num)s minute", "%(num)s minutes")
    elif hours <= 72:
        count, forms = round(hours), N_plural("%(num)s hour", "%(num)s hours")
    else:
        count, forms = round(hours / 24), N_plural("%(num)s day", "%(num)s days")
    return words.ngettext(*forms, count) % {"num": words.number(count)}


def confirmation_message(
    site: Site, email: str, url: str, now: datetime, words: Localiser = ENGLISH
) -> bytes:
    """A short plain-text email with the confirmation link, in the reader's language."""
    sender = site.settings.sender_address
    _ = words.gettext
    values = {
        "list_name": site.list_name,
        "email": email,
        "lifetime": lifetime(site.settings.web.confirm_within, words),
    }
    text = "\n".join(
        [
            _("Hello,"),
            "",
            _("Someone, probably you, asked to receive %(list_name)s at %(email)s.") % values,
            _("To confirm, open this link and press Confirm (it works for %(lifetime)s):") % values,
            "",
            url,
            "",
            _("If you did not ask for this, ignore this email: nothing will be sent to you."),
            "",
            f"-- {site.list_name}",
            "",
        ]
    )
    subject = _("Please confirm your subscription to %(list_name)s") % values
    headers = [
        ("From", encode_address(sender.display_name, sender.addr_spec)),
        ("To", encode_address("", email)),
        ("Subject", encode_text_header(subject)),
        ("Content-Language", words.code),
        ("Date", format_datetime(now)),
        ("Message-ID", make_msgid(domain=sender.domain)),
        ("Auto-Submitted", "auto-generated"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", "quoted-printable"),
    ]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("ascii")
    return head + b"\r\n" + quoted_printable(text)


def confirmation_path(site: Site, email: str, sign_up: str) -> str:
    """The confirmation link's path: a token signed for this address and this sign-up's id."""
    expires = time.time() + site.settings.web.confirm_within.total_seconds()
    token = make_token(site.secret, f"confirm|{sign_up}", email, expires)
    return site.path("confirm", token=token, signup=sign_up)


def send_confirmation(site: Site, email: str, sign_up: str, words: Localiser = ENGLISH) -> None:
    """Email the link confirming the sign-up with id `sign_up`, in the language of `words`.
    Raises DeliveryError."""
    settings = site.settings
    url = site.public_origin + confirmation_path(site, email, sign_up)
    data = confirmation_message(site, email, url, utcnow(), words)
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
