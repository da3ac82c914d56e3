"""Bounces written for people: Postfix, Exim, Sendmail, qmail, Exchange, Gmail, Yahoo, SMTP32,
GroupWise, Domino... without (or with a useless) message/delivery-status part.

They share one shape, which is what is read here rather than one parser per MTA: an intro
("could not be delivered to the following recipients:"), then each failed address on a line
of its own or leading a line (`<a@b>: reason`, `a@b on <date>`, `a@b... User unknown`,
`RCPT TO:<a@b>: 550 ...`), then its reason on that line or the indented lines below, then a
copy of the original behind a marker line. Addresses are taken only from the notification
above that marker, never from header lines, and only with a failure said near them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .severity import one_line

ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b")

_RETURNED_MARKER = re.compile(
    r"^[\s>]*(?:[-=_*]{2,}.*)?(?:original message|below this line is a copy|"
    r"this is a copy of the message|(?:the )?(?:original|returned|undelivered|unsent|rejected)"
    r" message|message (?:header )?follows|included message|copy of (?:the |your )?message|"
    r"original message headers|headers of the original|unsent message follows)"
    r"|^(?:Received|Return-Path|Message-ID|DKIM-Signature|MIME-Version): ",
    re.I,
)
_HEADER_LINE = re.compile(
    r"^\s*(?:from|to|cc|bcc|sender|reply-to|return-path|received|message-id|references|"
    r"in-reply-to|date|subject|x-[\w-]+|envelope-to|delivered-to|list-[\w-]+|errors-to)\s*:",
    re.I,
)
_NOT_RECIPIENT = re.compile(
    r"^(?:postmaster|mailer-daemon|mailer_daemon|mail-daemon|mdaemon|maildaemon|"
    r"abuse|hostmaster|webmaster|noreply|no-reply|root)@",
    re.I,
)
_FAILURE_NEAR = re.compile(
    r"\b[45]\d\d\b|\b[45]\.\d{1,3}\.\d{1,3}\b|fail|could ?n[o']t|can ?not|unable|undeliver|"
    r"not (?:be )?delivered|reject|refused|denied|unknown|invalid|not found|no such|"
    r"does ?n[o']t exist|error|quota|full|disabled|inactive|expired|blocked|bounced|"
    r"did not reach|not reach|problem|unavailable|unrouteable|not exist|permanent|"
    r"did not (?:exactly )?match|not (?:a )?valid|no longer|not known|"
    r"无法|失败|未能|не удалось|не может|konnte nicht|n'a pas pu|no se pudo|non è stat",
    re.I,
)
_EXPANDED_FROM = re.compile(r"\(expanded from:? <?([^>)\s]+@[^>)\s]+)>?\)", re.I)
_GENERATED = re.compile(r"^\s*\((?:generated|expanded) from:? <?([^>)\s]+@[^>)\s]+)>?\)\s*$", re.I)
_X400_PREFIX = re.compile(r"^(?:SMTP|RFC-?822)[=:]", re.I)
_X400_ROUTE = re.compile(r"\S*(?:SMTP|RFC-?822)[=:]", re.I)
_LEADING = re.compile(r"^[\s*>\-•|<]*(?:[A-Za-z][\w\- <>]{0,45}[:=][\s<]*)?<?\s*$")
_BARE_NAME = re.compile(r"^\s+[A-Za-z][\w.-]{1,63}\s*$")
_DELAY_SUBJECT = re.compile(
    r"delay|not (?:yet )?been delivered|still being retried|delivery (?:status )?warning|"
    r"warning: message|will retry|temporar",
    re.I,
)
_DELAY_BODY = re.compile(
    r"this is (?:just )?a warning|warning message only|will (?:continue to |keep )?(?:try|retr)|"
    r"you do not need to resend|no action is required|has not yet been delivered|"
    r"not been delivered yet|delivery (?:has been|is) delayed|delivery attempts will continue|"
    r"still trying|message is delayed|is still in the queue",
    re.I,
)


@dataclass(frozen=True)
class TextFailure:
    address: str
    diagnostic: str  # the reason given near the address, one line (may be empty)


def cut_at_returned_copy(text: str) -> str:
    """The notification above the returned copy of the original, if a marker shows one."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if index > 0 and _RETURNED_MARKER.search(line):
            return "\n".join(lines[:index])
    return text


def looks_like_delay(subject: str, text: str) -> bool:
    """A warning that delivery is late but still being tried: not a bounce (yet)."""
    if _DELAY_SUBJECT.search(subject):
        return True
    head = text[:4000]
    return bool(_DELAY_BODY.search(head)) and not re.search(
        r"permanent|gave up|given up|failed permanently|will not (?:be )?retr", head, re.I
    )


def _paragraph_after(lines: list[str], start: int) -> list[str]:
    """The lines after `start` that continue its paragraph (at most 8), stopping at the
    next listed address."""
    found: list[str] = []
    for line in lines[start + 1 : start + 9]:
        if not line.strip() or _listed_line(line):
            break
        if not _HEADER_LINE.match(line):
            found.append(line.strip())
    return found


def _next_paragraph(lines: list[str], start: int) -> list[str]:
    """When an address stands alone before a blank line (Gmail), the reason is below it."""
    index = start + 1
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index >= len(lines) or _listed_line(lines[index]):
        return []
    return [lines[index].strip(), *_paragraph_after(lines, index)][:6]


def _intro(lines: list[str], index: int) -> str:
    """The nearest preceding non-blank lines (the paragraph introducing an address list)."""
    before = [line for line in lines[max(0, index - 6) : index] if line.strip()]
    return " ".join(before[-3:])


def _clean_address(text: str) -> str | None:
    """`SMTP=a@b` -> `a@b`; None for what only looks like an address (`david...@gmail.com`)."""
    address = _X400_PREFIX.sub("", text.strip(".'\""))
    local = address.rpartition("@")[0]
    if not local or ".." in local or local.startswith(".") or local.endswith("."):
        return None
    return address if ADDRESS.fullmatch(address) else None


def _address_alone(line: str) -> bool:
    """The line is one address, give or take brackets, bullets, a date or a trailing colon."""
    match = ADDRESS.search(line)
    if not match:
        return False
    rest = line.replace(match.group(0), "")
    rest = _X400_PREFIX.sub("", _X400_ROUTE.sub("", rest))
    rest = re.sub(r"(?:\b\w{1,4}=[^;]*;\s*)+(?:dda:)?", "", rest)  # an X.400 route
    rest = re.sub(r"\bon\b.*$|\.\.\..*$|mailto|\bSMTP\b", "", rest, flags=re.I)
    return not re.sub(r"[<>:;,.()\[\]\"'\s*•|-]", "", rest)


def _address_leads(line: str, match: re.Match[str]) -> bool:
    """The address opens the line, perhaps after a label (`Error-for:`, `RCPT TO:<`)."""
    return bool(_LEADING.match(line[: match.start()]))


def _listed_line(line: str) -> bool:
    match = ADDRESS.search(line)
    return bool(match) and (_address_alone(line) or _address_leads(line, match))


def text_failures(text: str, exclude: set[str], mail_domain: str = "") -> list[TextFailure]:
    """The failed addresses a human-readable bounce names, with their reasons.

    `exclude` holds lowercased addresses never to take (the report's own From, To, the
    original's sender). Listed addresses (alone on a line, or leading it) win over ones
    merely mentioned in a sentence near the top; `mail_domain` completes AOL's bare names.
    """
    lines = cut_at_returned_copy(text).split("\n")
    listed: dict[str, list[str]] = {}
    mentioned: dict[str, list[str]] = {}
    nonblank = 0
    for index, line in enumerate(lines):
        nonblank += bool(line.strip())
        generated = _GENERATED.match(line)
        if generated:
            _rename_previous(listed, lines, index, generated.group(1))
            continue
        if _HEADER_LINE.match(line):
            continue
        for match in ADDRESS.finditer(line):
            address = _clean_address(match.group(0))
            if address is None or address.lower() in exclude or _NOT_RECIPIENT.match(address):
                continue
            expanded = _EXPANDED_FROM.search(line)
            if expanded and expanded.start() <= match.start() < expanded.end():
                continue  # "(expanded from <x>)": x replaces the address leading the line
            if expanded:
                address = _clean_address(expanded.group(1)) or address
            reason = _reason_for(lines, index, line, match)
            if _address_alone(line) or _address_leads(line, match):
                if _FAILURE_NEAR.search(reason + " " + _intro(lines, index)):
                    _add(listed, address, reason)
            elif nonblank <= 8 and _FAILURE_NEAR.search(reason):
                _add(mentioned, address, reason)
    if not listed and mail_domain:
        listed = _bare_names(lines, mail_domain)
    chosen = listed or mentioned
    return [TextFailure(a, one_line(" ".join(r))) for a, r in chosen.items()]


def _add(found: dict[str, list[str]], address: str, reason: str) -> None:
    key = next((k for k in found if k.lower() == address.lower()), address)
    reasons = found.setdefault(key, [])
    if reason and reason not in reasons:
        reasons.append(reason)


def _rename_previous(
    listed: dict[str, list[str]], lines: list[str], index: int, alias: str
) -> None:
    """Exim's `(generated from x)` under a listed address: x is what was sent to."""
    alias = _clean_address(alias) or ""
    previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
    match = ADDRESS.search(previous)
    old = _clean_address(match.group(0)) if match else None
    reasons = listed.pop(old, []) if old else []
    if alias:
        below = " ".join(_paragraph_after(lines, index))
        listed[alias] = reasons or ([below] if below else [])


def _bare_names(lines: list[str], domain: str) -> dict[str, list[str]]:
    """AOL lists bare screen names under "could not be delivered ... following recipients"."""
    found: dict[str, list[str]] = {}
    for index, line in enumerate(lines):
        if _BARE_NAME.match(line) and re.search(r"following recipients?", _intro(lines, index)):
            found[f"{line.strip()}@{domain}"] = [_intro(lines, index)]
    return found


def _reason_for(lines: list[str], index: int, line: str, match: re.Match[str]) -> str:
    if _address_alone(line):
        below = _paragraph_after(lines, index)
        return " ".join(below or _next_paragraph(lines, index))
    after = _EXPANDED_FROM.sub("", line[match.end() :]).strip(" >:;,.\t")
    if _address_leads(line, match):
        label = line[: match.start()].strip(" <>:=*\t-")
        below = _paragraph_after(lines, index) or _next_paragraph(lines, index)
        return " ".join([label, after, *below]).strip()
    return " ".join([line.strip(), *_paragraph_after(lines, index)[:2]])
