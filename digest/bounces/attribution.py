"""Whom a bounce or complaint is about, and which delivery it returns.

With VERP on (`bounces.return_path` set), mail is attributed by its signed token only: the
envelope address `bounces+TOKEN@domain` names the delivery, and the token's MAC binds it to
that delivery's subscriber. A token that does not verify, or no token at all, attributes the
mail to nobody, so nobody can unsubscribe anyone by forging a bounce. A `trusted` report (a
webhook whose signature was checked) may fall back to the next two.

Without VERP: the returned Message-ID matched against the deliveries (it names the very
digest), then the report's failed recipients (Final-Recipient / Original-Recipient, or the
complainant of a feedback report) matched against whom digests were sent to.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..state import BounceRecords
from .model import Classified
from .verp import BadVerpToken, read_verp


@dataclass(frozen=True)
class Attribution:
    """`subscriber` as the deliveries spell it, or None with `why_not` saying why."""

    subscriber: str | None
    delivery_id: int | None
    how: str  # verp | message-id | recipient | "" (unattributed)
    why_not: str = ""


NOBODY_NO_STATE = Attribution(None, None, "", "no state yet: no digest was ever sent")


def attribute(
    classified: Classified,
    records: BounceRecords | None,
    return_path: str | None,
    secret: bytes | None,
    trusted: bool = False,
) -> Attribution:
    """The subscriber and delivery `classified` is about (see the module's docstring)."""
    if records is None:
        return NOBODY_NO_STATE
    if return_path is not None:
        by_token = _by_verp(classified, records, return_path, secret)
        if by_token.subscriber is not None or not trusted:
            return by_token
    if classified.original_message_ids:
        found = records.delivery_with_message_id(classified.original_message_ids)
        if found is not None:
            return Attribution(found[1], found[0], "message-id")
    for address in _named_addresses(classified):
        found = records.latest_delivery_to(address)
        if found is not None:
            return Attribution(found[1], found[0], "recipient")
    return Attribution(None, None, "", "no recipient or Message-ID in it matches a digest sent")


def _by_verp(
    classified: Classified, records: BounceRecords, return_path: str, secret: bytes | None
) -> Attribution:
    bad = ""
    for address in classified.envelope_to:
        try:
            token = read_verp(address, return_path, secret or b"", records.delivery_subscriber)
        except BadVerpToken as exc:
            bad = bad or str(exc)
            continue
        if token is not None and secret:
            return Attribution(token.subscriber, token.delivery_id, "verp")
    if bad:
        return Attribution(None, None, "", f"forged or damaged VERP address: {bad}")
    return Attribution(
        None,
        None,
        "",
        f"no VERP address of {return_path} in it (with VERP on, only a signed token attributes "
        "a bounce)",
    )


def _named_addresses(classified: Classified) -> list[str]:
    named = [r.address for r in classified.recipients if r.address]
    if classified.complaint_recipient:
        named.append(classified.complaint_recipient)
    return list(dict.fromkeys(named))
