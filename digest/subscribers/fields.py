"""One check per subscriber setting, used wherever a setting comes in: subscribers.yaml, the
web's forms, the settings stored from the web and the preview's query.

Each `check_*` returns the value as a `Subscriber` holds it, or raises `FieldError` saying what
is wrong in the words staff read in `digest check`; the web shows its own shorter words for
the same failures.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from ..caches import memo
from ..languages import reader_language, reader_languages
from ..models import Subscriber
from ..settings import values

SETTINGS = (
    "name",
    "regions",
    "topics",
    "group_by",
    "order",
    "frequency",
    "timezone",
    "language",
    "item_languages",
)
LISTS = ("regions", "topics", "item_languages")  # settings kept as lists
KEYS = ("email", *SETTINGS)
GROUPINGS = ("region", "topic")
FREQUENCIES = ("daily", "weekly", "monthly")
ORDERS = ("newest", "oldest")
DEFAULT = Subscriber(email="default@example.org")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


class FieldError(ValueError):
    """A setting's value is not acceptable; the message says why."""


def valid_email(value: str) -> bool:
    return bool(_EMAIL.match(value)) and len(value) <= 254


def check_email(value: Any) -> str:
    if not isinstance(value, str) or not valid_email(value.strip()):
        raise FieldError(f"invalid email address {value!r}")
    return value.strip()


# C0 and C1 controls (NUL, ESC, tab, CR, LF, DEL, NEL, CSI ...) and Unicode's line and paragraph
# separators: none belongs in a name, and each could break or forge a header or a terminal line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_name(value: Any) -> str:
    """One line of text without control characters (none is an empty name)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError("'name': expected one line of text")
    found = _CONTROL.search(value)
    if found:
        raise FieldError(
            "'name': expected one line of text without control characters; found "
            f"U+{ord(found.group()):04X} at character {found.start() + 1}"
        )
    return value.strip()


def check_group_by(value: Any) -> str:
    if value is None or value == "":
        return DEFAULT.group_by
    if value not in GROUPINGS:
        raise FieldError(f"'group_by': expected region or topic, got {value!r}")
    return str(value)


def check_order(value: Any) -> str:
    """Stories inside each group: newest first (the default) or oldest first."""
    if value is None or value == "":
        return DEFAULT.order
    if value not in ORDERS:
        raise FieldError(f"'order': expected newest or oldest, got {value!r}")
    return str(value)


def check_frequency(value: Any) -> str:
    if value is None or value == "":
        return DEFAULT.frequency
    if value not in FREQUENCIES:
        raise FieldError(f"'frequency': expected daily, weekly or monthly, got {value!r}")
    return str(value)


def check_timezone(value: Any) -> str | None:
    """An IANA timezone name; none (or empty) means the office's."""
    if value is None or value == "":
        return None
    try:
        return values.timezone(str(value))
    except (TypeError, ValueError) as exc:
        raise FieldError(f"'timezone': {exc or 'expected an IANA timezone name'}") from exc


def _unknown_language(key: str, value: Any) -> FieldError:
    return FieldError(
        f"'{key}': no translation for {value!r}; supported languages: "
        + ", ".join(reader_languages())
    )


def check_language(value: Any) -> str | None:
    """en, es or fr (es-MX counts as es); none (or empty) means the default_language."""
    if value is None or value == "":
        return None
    found = reader_language(value)
    if found is None:
        raise _unknown_language("language", value)
    return found


def check_item_languages(value: Any) -> tuple[str, ...]:
    """The languages of news wanted: a list (or one language), each once; none (or empty)
    means the subscriber's own language."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise FieldError("'item_languages': expected a list of languages, e.g. [es, en]")
    chosen: list[str] = []
    for entry in value:
        found = reader_language(entry)
        if found is None:
            raise _unknown_language("item_languages", entry)
        if found not in chosen:
            chosen.append(found)
    return tuple(chosen)


@memo(maxsize=8)
def _by_folded_name(known: tuple[str, ...]) -> dict[str, str]:
    return {k.casefold(): k for k in reversed(known)}  # the first of two that fold alike wins


def known_name(name: str, known: tuple[str, ...]) -> str | None:
    """`known`'s spelling of a region or topic written in any case, or None."""
    return _by_folded_name(known).get(name.strip().casefold())


def nearest(word: str, known: tuple[str, ...]) -> str | None:
    lowered = _by_folded_name(known)
    close = difflib.get_close_matches(word.casefold(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def unknown_name(name: str, kind: str, known: tuple[str, ...]) -> str:
    """`unknown region 'Carribean' (did you mean 'Caribbean'?); known regions: ...`"""
    guess = nearest(name, known)
    return (
        f"unknown {kind} {name!r}"
        + (f" (did you mean {guess!r}?)" if guess else "")
        + f"; known {kind}s: {', '.join(known)}"
    )


def check_names(value: Any, kind: str, known: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """Region or topic names written in any case (a list, or one name): the known spellings,
    each once, and a problem for each name that is not known. None means all (empty)."""
    if value is None:
        return (), []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return (), [f"'{kind}s': expected a list of {kind} names"]
    chosen: list[str] = []
    problems: list[str] = []
    for name in value:
        match = known_name(name, known)
        if match is None:
            problems.append(unknown_name(name, kind, known))
        elif match not in chosen:
            chosen.append(match)
    return tuple(chosen), problems


def stored_setting(key: str, value: Any, known: dict[str, tuple[str, ...]]) -> Any:
    """A setting kept from the web, or None when it no longer fits (a region renamed in the
    taxonomy, a timezone gone): the file's value then stays, rather than a list silently
    meaning "all". `known` maps "regions" and "topics" to the taxonomy's names."""
    if value is None and key != "timezone":
        return None
    if key in ("regions", "topics"):
        if not isinstance(value, list):
            return None
        kept = tuple(v for v in value if v in known[key])
        return kept if kept or not value else None
    if key == "item_languages" and not isinstance(value, list):
        return None
    try:
        checked = CHECKS[key](value)
    except FieldError:
        return None
    if key == "timezone":
        return checked or ""  # "": the office default, chosen on the web
    return checked


def subscriber_settings(subscriber: Subscriber) -> dict[str, Any]:
    """A subscriber's settings in the form the web stores them."""
    return {
        "name": subscriber.name,
        "regions": list(subscriber.regions),
        "topics": list(subscriber.topics),
        "group_by": subscriber.group_by,
        "order": subscriber.order,
        "frequency": subscriber.frequency,
        "timezone": subscriber.timezone,
        "language": subscriber.language,
        "item_languages": list(subscriber.item_languages),
    }


CHECKS = {
    "name": check_name,
    "group_by": check_group_by,
    "order": check_order,
    "frequency": check_frequency,
    "timezone": check_timezone,
    "language": check_language,
    "item_languages": check_item_languages,
}
