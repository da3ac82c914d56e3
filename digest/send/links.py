"""Each subscriber's own links in their digest, and what a delivery records so that
`digest serve` can show the digest again.

Every link carries an opaque token (`compose.links`): unsubscribe (also the List-Unsubscribe
header), the preference centre, and one "digest" token for the digest in the browser and the
page of every story of the period, bound to that message. Three tokens a message, about 5 µs
each.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from ..caches import memo
from ..compose import link_with_token, make_token
from ..compose.render import SharedRendering
from ..models import Digest
from ..settings import Settings

# A preference link in an email works this long (the web service's own last 7 days).
PREFERENCES_IN_EMAIL = timedelta(days=90)
_DIGEST_KEY = re.compile(r"^<digest\.([0-9a-f]{32})@")


def message_key(message_id: str) -> bytes:
    """The part of a digest's Message-ID that names it (`stable_message_id`'s hash)."""
    found = _DIGEST_KEY.match(message_id)
    return bytes.fromhex(found.group(1)) if found else message_id.encode()[:64]


class PersonalLinks:
    """The links of one run's messages: each subscriber's own tokens on the run's URLs."""

    def __init__(self, settings: Settings, secret: bytes, now: datetime) -> None:
        self.secret = secret
        self.unsubscribe_base = settings.unsubscribe_url
        self.web_pages = settings.serves_web
        self.pages = {name: settings.page_url(name) for name in ("preferences", "view", "more")}
        self.preferences_expire = int((now + PREFERENCES_IN_EMAIL).timestamp())

    def unsubscribe(self, email: str) -> str:
        return link_with_token(self.unsubscribe_base, make_token(self.secret, "unsubscribe", email))

    def personal(self, email: str, message_id: str, more_ids: tuple[str, ...]) -> dict[str, str]:
        """`Personal`'s links: preferences, and with `digest serve` the view and more pages."""
        token = make_token(self.secret, "preferences", email, self.preferences_expire)
        links = {"preferences_url": link_with_token(self.pages["preferences"], token)}
        if self.web_pages:
            token = make_token(self.secret, "digest", email, extra=message_key(message_id))
            links["view_url"] = link_with_token(self.pages["view"], token)
            if more_ids:
                links["more_url"] = link_with_token(self.pages["more"], token)
        return links


def feedback_id(run_id: int | None, list_id: str, sender_domain: str) -> str:
    """Gmail's Feedback-ID (Postmaster Tools' feedback loop): campaign:list:kind:sender, the
    campaign being the run, so complaints can be told apart by mailing."""
    campaign = f"run{run_id}" if run_id is not None else "unrecorded"
    return ":".join((campaign, list_id.replace(":", "."), "digest", sender_domain))


def listed_on_the_web(digest: Digest, shared: SharedRendering) -> tuple[str, ...]:
    """The stories the digest's web page lists besides those in the email: past `max_items`,
    and any the size limit left out."""
    shown = set(shared.shown_ids)
    return tuple(t.id for t in digest.items if t.id not in shown) + tuple(t.id for t in digest.more)


def digest_profile(digest: Digest, default_language: str = "en") -> str:
    """JSON of what the digest was made for: enough for `digest serve` to render it again,
    in the language it was written in."""
    subscriber = digest.subscriber
    return (
        '{"name":'
        + json.dumps(subscriber.name)
        + ","
        + _shared_profile(
            subscriber.regions,
            subscriber.topics,
            subscriber.group_by,
            subscriber.order,
            subscriber.frequency,
            subscriber.timezone,
            subscriber.reads(default_language),
            subscriber.news_languages(default_language),
            digest.period_start.isoformat(),
            digest.period_end.isoformat(),
        )
    )


@memo(maxsize=1024)
def _shared_profile(*values: Any) -> str:
    """The profile past the name, the same for many subscribers: made once."""
    keys = ("regions", "topics", "group_by", "order", "frequency", "timezone", "language")
    keys += ("item_languages", "period_start", "period_end")
    fields = dict(zip(keys, values, strict=True))
    return json.dumps(fields, separators=(",", ":"))[1:]
