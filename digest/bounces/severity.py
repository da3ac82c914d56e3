"""Hard or soft: is the ADDRESS bad, or was only this message refused?

Hard (suppress at once): the mailbox or domain does not exist or is disabled; RFC 3463 5.1.x
(bad mailbox, bad domain, 5.1.10 null MX), 5.2.1 (mailbox disabled), 5.4.4 (unroutable), and
their worded forms ("User unknown", "does not exist", "Host or domain name not found").
Soft: everything else: temporary 4.x.x, mailbox full (even as 5.2.2 or 550), spam and policy
refusals (5.7.x, block lists, DMARC), size, rate limits, expiry in a queue, loops.

Words beat codes where servers misuse codes: "550 5.7.1 message rejected as spam" is soft, a
"552 5.2.2 mailbox full" is soft, "550 5.5.0 mailbox unavailable" is hard. When nothing says
the address is bad the answer is soft: a soft call only counts, a wrong hard one loses a reader.
"""

from __future__ import annotations

import re

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]|\d)")
_CODE = re.compile(r"(?:^|[\s'\"(:\[#=])([45][0-5]\d)(?=[\s\-:,;)\]]|\.\s|\.?$)")

# Words saying this message was refused, or failed for now, while the mailbox exists.
_SOFT_WORDS = re.compile(
    r"over ?quota|quota (?:exceeded|exceed)|exceed\w* (?:\w+ )?(?:quota|storage)|"
    r"(?:mail ?box|inbox|mail ?folder|box) (?:is |was )?full|mailbox (?:size|storage) limit|"
    r"full mailbox|insufficient (?:system )?storage|disk quota|storage (?:space|quota)|"
    r"exceeds? (?:the )?(?:allowed|maximum|fixed|max)? ?(?:\w+ )?size|too large|too big|"
    r"size limit|message size|"
    r"spam|junk|unsolicited|blocked|block ?list|black ?list|rbl\b|spamhaus|spamcop|barracuda|"
    r"reputation|policy|policies|dmarc|\bspf\b|dkim|unauthenticated|not authori[sz]ed|"
    r"content (?:filter|rejected)|virus|malware|phish|suspicious|"
    r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)|"
    r"rate limit|rate that prevents|too many|throttl|greylist|graylist|try again later|"
    r"temporar|deferred|timed? ?out|connection (?:refused|reset|closed|lost)|"
    r"loop|too many hops|hop count|expired|retry time|could not be delivered within|"
    r"no answer from|unable to connect|network error|try again|not reachable|not responding|"
    r"could not find a gateway|maximum delivery attempts|not been collected",
    re.I,
)

# Words saying the address itself is bad.
_HARD_WORDS = re.compile(
    r"user ?unknown|unknown (?:user|recipient|address|mailbox|local|e-?mail)|"
    r"recipient (?:unknown|not found)|"
    r"no such (?:user|recipient|mailbox|address|person|local user|account|domain)|"
    r"(?:user|mailbox|address|recipient|account|addressee)s? (?:\w+ )?(?:not found|unknown)|"
    r"does ?n[o']t exist|not exist|is not a valid|invalid (?:recipient|mailbox|address|user)|"
    r"not (?:a )?(?:valid|known) (?:user|recipient|mailbox|address)|"
    r"mailbox (?:is )?unavailable|mailbox not available|no mailbox|bad destination mailbox|"
    r"mailbox name not allowed|doesn't have an? [\w.-]+ account|"
    r"(?:account|mailbox|address|user) (?:has been |is |was )?"
    r"(?:disabled|deactivated|inactive|closed|deleted|terminated|removed|suspended|locked)|"
    r"no longer (?:active|available|in use|valid|exists?|with)|"
    r"unrouteable address|host (?:or domain name )?not found|domain (?:name )?not found|"
    r"unknown domain|domain does ?n[o']t exist|nxdomain|name or service not known|"
    r"no mx\b|unable to look up host|non-existent host|no (?:mail|valid) hosts? for|"
    r"recip(?:ient)?notfound|exrecipnotfound|address rejected: access denied|"
    r"not listed in|not our customer|user_unknown|no such user|name is not recognized|"
    r"\bnot known\b|unknown host|invalid (?:\w+ ){0,3}user ?id|no final (?:\w+ )?delivery point|"
    r"does not have a final|did not (?:exactly )?match|no matches to nameserver|"
    r"n'existe pas|no existe|existiert nicht|unbekannt|inconnu|sconosciut|non esiste|"
    r"wrong or no longer valid|not a valid user",
    re.I,
)

_HARD_STATUS = re.compile(r"^5\.(?:1\.(?:[0-6]|10)|2\.1|4\.4)$")


def find_status(text: str) -> str | None:
    """The first RFC 3463 enhanced status code in the text, e.g. '5.1.1'."""
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else None


def find_code(text: str) -> int | None:
    """The first plausible SMTP reply code (2xx-5xx) in the text."""
    match = _CODE.search(text)
    return int(match.group(1)) if match else None


def best_status(reported: str | None, diagnostic: str) -> str | None:
    """The DSN's Status, unless it is generic (x.0.0) and the diagnostic names a finer one
    of the same class."""
    found = find_status(diagnostic)
    if reported is None:
        return found
    reported = reported.strip().split()[0] if reported.strip() else ""
    if not _STATUS.fullmatch(reported):
        return found
    if found and reported.endswith(".0.0") and found[0] == reported[0]:
        return found
    return reported


def is_hard(status: str | None, code: int | None, text: str, context: str = "") -> bool:
    """Whether the failure shows the address itself is bad (see the module docstring).

    `context` (the whole notification) is read only when neither the status nor `text`
    says anything: a qmail or web-mail report often words the reason away from the address.
    """
    if (status and status.startswith("4")) or (code and 400 <= code < 500 and not status):
        return False
    if status == "5.2.2" or _SOFT_WORDS.search(text):
        return False
    if status and _HARD_STATUS.match(status):
        return True
    if _HARD_WORDS.search(text):
        return True
    if context and (not status or status.endswith(".0.0")):
        return not _SOFT_WORDS.search(context) and bool(_HARD_WORDS.search(context))
    return False


def one_line(text: str, limit: int = 400) -> str:
    """Whitespace folded to single spaces, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
