"""Hand finished messages over: to a local Maildir (the embedded default) or an SMTP server.

Every `Sender` takes finished message bytes and raises the delivery errors from `errors`:
TemporaryDeliveryError (retry), PermanentDeliveryError (this subscriber failed) or
DeliveryConfigError (no message can go out: stop the run). A `Dispatcher` runs the senders of
a run: several connections, a rate limit, retries.
"""

from .dispatch import Dispatcher, Job, NextSlot, RateLimit, Result
from .envelope import Envelope
from .maildir import MaildirSender
from .sender import LooksAhead, Sender, open_sender, send_with_retries
from .smtp import SMTPSender

__all__ = [
    "Dispatcher",
    "Envelope",
    "Job",
    "LooksAhead",
    "MaildirSender",
    "NextSlot",
    "RateLimit",
    "Result",
    "SMTPSender",
    "Sender",
    "open_sender",
    "send_with_retries",
]
