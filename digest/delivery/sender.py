"""What every way of handing a message over offers, and retrying a temporary failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..errors import DeliveryError, TemporaryDeliveryError
from ..settings import DeliverySettings
from .envelope import Envelope
from .maildir import MaildirSender
from .smtp import SMTPSender


class Sender(Protocol):
    def send(self, sender: str, recipient: str, data: bytes) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class LooksAhead(Protocol):
    """A sender that can use knowing the next message's envelope (SMTP pipelining)."""

    def expect_next(self, envelope: Envelope | None) -> None: ...


def open_sender(settings: DeliverySettings) -> Sender:
    if settings.method == "smtp":
        return SMTPSender(settings.smtp)
    return MaildirSender(settings.maildir)


def send_with_retries(
    sender: Sender,
    envelope_from: str,
    recipient: str,
    data: bytes,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send, retrying temporary failures with exponential backoff. Returns the attempts made."""
    attempt = 0
    while True:
        attempt += 1
        try:
            sender.send(envelope_from, recipient, data)
            return attempt
        except TemporaryDeliveryError as exc:
            if attempt > retries:
                exc.attempts = attempt
                raise
            sleep(min(backoff * 2 ** (attempt - 1), 60.0))
        except DeliveryError as exc:  # refused for good, uncertain, or the run must stop
            exc.attempts = attempt
            raise
