"""Load and validate subscribers.yaml. Every problem names the file, the line and the subscriber;
a file with any problem yields no subscribers at all (a bad file sends nothing)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from ..errors import ProblemList, SubscribersError
from ..models import Subscriber
from ..taxonomy import Taxonomy
from ..yamlfile import LineDict, ListStream, YamlSyntaxError, where
from . import fields


def not_listed(addresses: Iterable[str]) -> SubscribersError:
    """The error for `--only` addresses that are not on the list."""
    return SubscribersError(
        f"--only {', '.join(sorted(addresses))}: not in the subscribers file",
        hint="check the address against subscribers.yaml",
    )


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

        try:
            email = fields.check_email(email)
        except fields.FieldError as exc:
            _unknown_keys(entry, fail)
            fail(str(exc), "email")
            continue
        at = entry.line_of("email")
        first = seen.first_listed(email.casefold(), at, email)
        if first is not None:
            _unknown_keys(entry, fail)
            problems.append((at, _duplicate(path, email, at, first)))
            continue
        subscriber = _subscriber(entry, email, taxonomy, fail, shared)
        if subscriber is not None:
            yield subscriber
    for email, at, first in seen.duplicates():
        problems.append((at, _duplicate(path, email, at, first)))
    for key, at in other_keys() if callable(other_keys) else other_keys:
        problems.append((at, SubscribersError(f"{where(path, at)}: unknown key '{key}'")))
    if problems:
        ordered = [problem for _, problem in sorted(problems, key=lambda p: p[0])]
        raise ordered[0] if len(ordered) == 1 else ProblemList(ordered)


def _unknown_keys(entry: LineDict, fail: Callable[[str, str], None]) -> None:
    for key in entry:
        if key not in fields.KEYS:
            guess = fields.nearest(str(key), fields.KEYS)
            fail(f"unknown key '{key}'" + (f" (did you mean '{guess}'?)" if guess else ""), key)


def _subscriber(
    entry: LineDict,
    email: str,
    taxonomy: Taxonomy,
    fail: Callable[[str, str], None],
    shared: dict[tuple[str, ...], tuple[str, ...]],
) -> Subscriber | None:
    """One entry's subscriber, each setting checked by `fields`; None after any problem."""
    _unknown_keys(entry, fail)
    failed = False
    values: dict[str, Any] = {}
    for key in fields.CHECKS:
        try:
            values[key] = fields.CHECKS[key](entry.get(key))
        except fields.FieldError as exc:
            fail(str(exc), key)
            failed = True
    chosen = values.get("item_languages")
    if chosen:
        values["item_languages"] = shared.setdefault(chosen, chosen)  # one tuple per choice
    for key, kind, known in (
        ("regions", "region", taxonomy.regions),
        ("topics", "topic", taxonomy.topics),
    ):
        names, name_problems = fields.check_names(entry.get(key), kind, known)
        for problem in name_problems:
            fail(problem, key)
        failed = failed or bool(name_problems)
        values[key] = shared.setdefault(names, names)  # one tuple per distinct choice
    if failed:
        return None
    return Subscriber(email=email, line=entry.line, **values)


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
