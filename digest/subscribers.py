"""Load and validate subscribers.yaml. Every problem names the file, the line and the subscriber;
a file with any problem yields no subscribers at all (a bad file sends nothing)."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ProblemList, SubscribersError
from .models import Subscriber
from .taxonomy import Taxonomy
from .yamlfile import LineDict, ListStream, YamlSyntaxError, where

KEYS = ("email", "name", "regions", "topics", "group_by", "frequency", "timezone")
GROUPINGS = ("region", "topic")
FREQUENCIES = ("daily", "weekly", "monthly")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


def not_listed(addresses: Iterable[str]) -> SubscribersError:
    """The error for `--only` addresses that are not on the list."""
    return SubscribersError(
        f"--only {', '.join(sorted(addresses))}: not in the subscribers file",
        hint="check the address against subscribers.yaml",
    )


def nearest(word: str, known: tuple[str, ...]) -> str | None:
    lowered = _by_folded_name(known)
    close = difflib.get_close_matches(word.casefold(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def valid_email(value: str) -> bool:
    return bool(_EMAIL.match(value)) and len(value) <= 254


@functools.lru_cache(maxsize=8)
def _by_folded_name(known: tuple[str, ...]) -> dict[str, str]:
    return {k.casefold(): k for k in reversed(known)}  # the first of two that fold alike wins


def known_name(name: str, known: tuple[str, ...]) -> str | None:
    """`known`'s spelling of a region or topic written in any case, or None."""
    return _by_folded_name(known).get(name.strip().casefold())


def _names(value: Any, kind: str, known: tuple[str, ...], fail: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(f"'{kind}s': expected a list of {kind} names")
        return ()
    result = []
    for name in value:
        match = known_name(name, known)
        if match is None:
            guess = nearest(name, known)
            fail(
                f"unknown {kind} {name!r}"
                + (f" (did you mean {guess!r}?)" if guess else "")
                + f"; known {kind}s: {', '.join(known)}"
            )
        elif match not in result:
            result.append(match)
    return tuple(result)


def parse_subscribers(data: Any, path: Path | str, taxonomy: Taxonomy) -> list[Subscriber]:
    """Validate an already-parsed subscribers document (see `load_subscribers` for files)."""
    if data is None or (isinstance(data, LineDict) and data.get("subscribers") is None):
        return []
    if not isinstance(data, LineDict) or not isinstance(data.get("subscribers"), list):
        raise SubscribersError(
            f"{path}:1: expected 'subscribers:' followed by a list of subscribers",
            hint="see the example subscribers.yaml in the project",
        )
    other = [(str(k), data.line_of(k)) for k in data if k != "subscribers"]
    return list(_validate(data["subscribers"], other, path, taxonomy, Listed()))


class Listed:
    """Where each address was first listed, to report duplicates (casefolded address -> line).
    `SendList` keeps this on disk instead, for lists too large to keep in memory."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}

    def first_listed(self, folded: str, line: int, email: str) -> int | None:
        """The line this address was listed on before, or None (and it is now listed here)."""
        first = self.lines.setdefault(folded, line)
        return None if first == line else first

    def duplicates(self) -> Iterable[tuple[str, int, int]]:
        return ()  # each was reported as it was listed


class Seen(Protocol):
    """Tells duplicates apart: at once from `first_listed`, or (a `SendList`, which writes
    addresses in batches) once every entry is read, from `duplicates`."""

    def first_listed(self, folded: str, line: int, email: str) -> int | None: ...

    def duplicates(self) -> Iterable[tuple[str, int, int]]:
        """(address, line, line it was first listed on) of each later listing."""
        ...


def _problem(path: Path | str, line: int, label: str, message: str) -> SubscribersError:
    """A problem with one subscriber's entry, at the line it is on."""
    return SubscribersError(
        f"{where(path, line)}: {label}: {message}", hint=f"fix {label} in {path}"
    )


def _duplicate(path: Path | str, email: str, line: int, first: int) -> SubscribersError:
    message = f"duplicate address (already listed on line {first})"
    return _problem(path, line, f"subscriber {email!r}", message)


def _validate(
    entries: Iterable[Any],
    other_keys: Callable[[], list[tuple[str, int]]] | list[tuple[str, int]],
    path: Path | str,
    taxonomy: Taxonomy,
    seen: Seen,
) -> Iterator[Subscriber]:
    """Every entry checked and every problem collected; valid subscribers are yielded as they
    are read. Any problem raises at the end: a consumer must then drop what it was given."""
    problems: list[tuple[int, SubscribersError]] = []  # with their lines, to keep file order
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per distinct choice
    line = 0
    for index, entry in enumerate(entries, 1):
        if not isinstance(entry, LineDict):
            message = f"{path}: subscriber #{index}: expected a mapping with email:"
            problems.append((line, SubscribersError(message)))
            continue
        line = entry.line
        email = entry.get("email")
        has_email = isinstance(email, str) and email.strip()
        label = f"subscriber {email.strip()!r}" if has_email else f"subscriber #{index}"

        def fail(
            message: str, key: str | None = None, _entry: LineDict = entry, _label: str = label
        ) -> None:
            at = _entry.line_of(key) if key else _entry.line
            problems.append((at, _problem(path, at, _label, message)))

        for key in entry:
            if key not in KEYS:
                guess = nearest(str(key), KEYS)
                fail(f"unknown key '{key}'" + (f" (did you mean '{guess}'?)" if guess else ""), key)
        if not isinstance(email, str) or not valid_email(email.strip()):
            fail(f"invalid email address {email!r}", "email")
            continue
        email = email.strip()
        at = entry.line_of("email")
        first = seen.first_listed(email.casefold(), at, email)
        if first is not None:
            problems.append((at, _duplicate(path, email, at, first)))
            continue
        name = entry.get("name") or ""
        if not isinstance(name, str) or "\r" in name or "\n" in name:
            fail("'name': expected one line of text", "name")
            name = ""
        regions = _names(
            entry.get("regions"), "region", taxonomy.regions, lambda m: fail(m, "regions")
        )
        topics = _names(entry.get("topics"), "topic", taxonomy.topics, lambda m: fail(m, "topics"))
        group_by = entry.get("group_by") or "region"
        if group_by not in GROUPINGS:
            fail(f"'group_by': expected region or topic, got {group_by!r}", "group_by")
        frequency = entry.get("frequency") or "weekly"
        if frequency not in FREQUENCIES:
            fail(f"'frequency': expected daily, weekly or monthly, got {frequency!r}", "frequency")
        timezone = entry.get("timezone")
        if timezone is not None:
            try:
                ZoneInfo(str(timezone))
            except (ZoneInfoNotFoundError, ValueError):
                fail(
                    f"'timezone': unknown timezone {timezone!r}; use an IANA name like "
                    "America/Jamaica",
                    "timezone",
                )
        yield (
            Subscriber(
                email=email,
                name=name.strip(),
                regions=shared.setdefault(regions, regions),
                topics=shared.setdefault(topics, topics),
                group_by=str(group_by),
                frequency=str(frequency),
                timezone=str(timezone) if timezone else None,
                line=entry.line,
            )
        )
    for email, at, first in seen.duplicates():
        problems.append((at, _duplicate(path, email, at, first)))
    for key, at in other_keys() if callable(other_keys) else other_keys:
        problems.append((at, SubscribersError(f"{where(path, at)}: unknown key '{key}'")))
    if problems:
        ordered = [problem for _, problem in sorted(problems, key=lambda p: p[0])]
        raise ordered[0] if len(ordered) == 1 else ProblemList(ordered)


def load_subscribers(path: Path, taxonomy: Taxonomy) -> list[Subscriber]:
    """Read and validate a subscribers file. Raises SubscribersError or ProblemList naming
    every problem."""
    return list(iter_subscribers(path, taxonomy))


def iter_subscribers(
    path: Path, taxonomy: Taxonomy, seen: Seen | None = None
) -> Iterator[Subscriber]:
    """Read and validate a subscribers file one entry at a time (a large file stays small in
    memory), yielding each valid subscriber. A problem anywhere raises SubscribersError or
    ProblemList once the whole file is read, naming every problem: whoever consumes this must
    then drop what it was given."""
    stream = ListStream(Path(path), "subscribers")
    try:
        yield from _validate(
            stream.entries(),
            lambda: stream.other_keys,
            path,
            taxonomy,
            seen if seen is not None else Listed(),
        )
    except FileNotFoundError as exc:
        raise SubscribersError(
            f"{path}: file not found", hint="check 'subscribers' in the settings"
        ) from exc
    except YamlSyntaxError as exc:
        raise SubscribersError(
            f"{where(path, exc.line)}: not valid YAML: {exc.problem}",
            hint="check indentation and quoting around that line; nothing was sent",
        ) from exc
    if stream.shape_error:
        raise SubscribersError(
            f"{path}:1: {stream.shape_error}: expected 'subscribers:' followed by a list of "
            "subscribers",
            hint="see the example subscribers.yaml in the project",
        )
