"""Checks for the values a settings file may hold: each returns the value as `Settings` keeps
it, or raises TypeError/ValueError (whose text, if any, says what is wrong)."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..durations import parse_duration
from ..languages import reader_language

Check = Callable[[Any], Any]


def string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError
    if "\r" in value or "\n" in value:
        raise ValueError("line breaks are not allowed")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("control characters are not allowed")
    return value.strip()


def whole_number(low: int, high: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise TypeError
        return value

    return check


def positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise TypeError
    return float(value)


def choice(options: tuple[str, ...]) -> Check:
    def check(value: Any) -> str:
        if value not in options:
            raise TypeError
        return str(value)

    return check


def sender(value: Any) -> str:
    text = string(value)
    _, addr = parseaddr(text)
    user, at, domain = addr.partition("@")
    if not at or not user or "." not in domain:
        raise ValueError("an address with a domain, e.g. Digest <digest@example.org>")
    return text


def url(value: Any) -> str:
    text = string(value)
    if not text.startswith(("https://", "http://")):
        raise ValueError("an http(s) URL")
    return text


def timezone(value: Any) -> str:
    text = string(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "America" is a folder
        raise ValueError(
            f"unknown timezone {text!r}; use an IANA name like America/Guatemala"
        ) from exc
    return text


def cron(value: Any) -> str:
    from ..crontab import crontab_trigger  # APScheduler (5-11 MB): not in a send's workers

    text = string(value)
    crontab_trigger(text, "UTC")  # ValueError says which field is wrong
    return text


def string_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TypeError
    return tuple(v.strip() for v in value)


def ip_address(value: Any) -> str:
    return str(ipaddress.ip_address(string(value)))


def duration(value: Any) -> Any:
    return parse_duration(value)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


# A VERP local part is `LOCAL+TOKEN`: TOKEN is at most 26 characters (an 8-byte delivery id and
# an 8-byte MAC in base32), and RFC 5321 allows 64 octets in all.
VERP_TOKEN_ROOM = 27


def return_path(value: Any) -> str:
    text = string(value)
    user, at, domain = text.rpartition("@")
    if not at or not user or "." not in domain or " " in text or "<" in text or "+" in user:
        raise ValueError("a plain address without a +tag, e.g. bounces@example.org")
    if len(user.encode()) > 64 - VERP_TOKEN_ROOM:
        raise ValueError(f"its local part must be at most {64 - VERP_TOKEN_ROOM} octets")
    return text


class SecretValueError(ValueError):
    """A value that must not be shown back (it holds a password)."""


SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # `postgresql:`, `sqlite:`, `C:` is 1 letter
POSTGRES_SCHEMES = ("postgresql", "postgres")


def state(value: Any) -> str:
    """A path to a SQLite file, or `postgresql://user@host:port/dbname` (never a password)."""
    text = string(value)
    found = SCHEME.match(text)
    if found is None or len(found.group()) == 2:  # a path (or a Windows drive letter)
        return text
    scheme = found.group()[:-1].lower()
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(f"{scheme}: is not a state; use a file path or postgresql://")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if parts.password is not None or "password=" in parts.query.lower():
        raise SecretValueError(
            "the URL holds a password: set it in the environment (state_password_env) or "
            "~/.pgpass, never in a file"
        )
    if not text[len(found.group()) :].startswith("//") or not parts.hostname:
        raise ValueError("the host is missing")
    if not parts.path.strip("/") or "/" in parts.path.strip("/"):
        raise ValueError("the database's name is missing")
    if port == 0:
        raise ValueError("a port number 1-65535")
    return text


def mailbox(value: Any) -> str:
    text = string(value)
    if "://" in text and not text.startswith("imaps://"):
        raise ValueError("a Maildir folder, or imaps://user@host/FOLDER (IMAP over TLS)")
    return text


def language(value: Any) -> str:
    """A language the project has a translation for (en, es, fr; es-MX counts as es)."""
    found = reader_language(string(value))
    if found is None:
        raise TypeError
    return found
