"""Bounces and complaints: read the bounce mailbox, classify each mail, decide what it means.

classify(data) -> Classified          one raw mail: bounce / complaint / auto-reply / other
classify_ses(notification) -> ...     an Amazon SES bounce or complaint notification (JSON)
verp_address / read_verp              the signed envelope sender bounces+TOKEN@domain
decide(events, now, ...) -> Decision  suppress / count / unsubscribe / nothing
open_source(where) -> MailSource      Maildir, file, mbox or imaps:// ; fingerprint(data)
"""

from .classify import classify
from .mailbox import (
    FileSource,
    ImapSource,
    MailboxError,
    MaildirSource,
    MailSource,
    MboxSource,
    fingerprint,
    open_source,
)
from .model import Classified, FailedRecipient
from .policy import BounceEvent, Decision, decide, event_kind, soft_count
from .ses import classify_ses
from .verp import BadVerpToken, VerpToken, read_verp, verp_address, verp_token_of

__all__ = [
    "BadVerpToken",
    "BounceEvent",
    "Classified",
    "Decision",
    "FailedRecipient",
    "FileSource",
    "ImapSource",
    "MailSource",
    "MailboxError",
    "MaildirSource",
    "MboxSource",
    "VerpToken",
    "classify",
    "classify_ses",
    "decide",
    "event_kind",
    "fingerprint",
    "open_source",
    "read_verp",
    "soft_count",
    "verp_address",
    "verp_token_of",
]
