"""Bounces and complaints: read the bounce mailbox, classify each mail, decide what it means.

classify(data) -> Classified          one raw mail: bounce / complaint / auto-reply / other
classify_ses(notification) -> ...     an Amazon SES bounce or complaint notification (JSON)
classify_event(event) -> Classified   the generic webhook's JSON event
verp_address / read_verp              the signed envelope sender bounces+TOKEN@domain
decide(events, now, ...) -> Decision  suppress / count / unsubscribe / nothing
open_source(where) -> MailSource      Maildir, file, mbox or imaps:// ; fingerprint(data)
read_bounces(settings, paths)         classify, record and act on new mail (`digest bounces`)
BounceRecorder.record(batch)          record classified mail (the webhooks' way in too)
VerpSigner(return_path, secret)       the per-message envelope sender of a send, made fast
"""

from .attribution import Attribution, attribute
from .classify import classify
from .generic import classify_event
from .intake import IntakeReport, read_bounces, recorder_for
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
from .recording import BounceRecorder, Incoming, Policy, Processed
from .ses import classify_ses
from .verp import BadVerpToken, VerpSigner, VerpToken, read_verp, verp_address, verp_token_of

__all__ = [
    "Attribution",
    "BadVerpToken",
    "BounceRecorder",
    "BounceEvent",
    "Classified",
    "Decision",
    "FailedRecipient",
    "FileSource",
    "Incoming",
    "IntakeReport",
    "ImapSource",
    "MailSource",
    "MailboxError",
    "MaildirSource",
    "MboxSource",
    "Policy",
    "Processed",
    "VerpSigner",
    "VerpToken",
    "attribute",
    "classify",
    "classify_event",
    "classify_ses",
    "decide",
    "event_kind",
    "fingerprint",
    "open_source",
    "read_bounces",
    "read_verp",
    "recorder_for",
    "soft_count",
    "verp_address",
    "verp_token_of",
]
