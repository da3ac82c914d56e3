"""The `sources:` setting: each entry a path or URL, or a mapping with per-source settings.

```yaml
sources:
  - items                                   # a folder: every readable file inside
  - path: https://partner.example.org/feed.xml
    name: Partner X
    language: es                            # en, es or fr: overrides what the feed says
    regions: [Caribbean]                    # for items that name no place
    require_topic: true                     # drop items that match no topic
```

Region names are checked against the taxonomy where the sources are used (the taxonomy may be
replaced); everything else here, with the file, line and key of each problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..languages import SUPPORTED, normalise_language
from ..yamlfile import LineDict
from . import values as v
from .model import SourceSettings

KEYS = ("path", "name", "language", "regions", "require_topic")
Fail = Callable[[int | None, str], None]  # (line, problem): one problem with the sources


def language(value: Any) -> str:
    """en, es or fr (a tag such as es-MX or fr_FR counts as its language)."""
    text = v.string(value)
    found = normalise_language(text)
    if found is None:
        raise TypeError
    return found


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError
    return value


ENTRY: dict[str, tuple[v.Check, str]] = {
    "path": (v.string, "a file, a folder or an http(s) feed URL"),
    "name": (v.string, "a name for the source, e.g. Partner X"),
    "language": (language, f"one of {', '.join(SUPPORTED)}"),
    "regions": (v.string_list, "a list of region names"),
    "require_topic": (boolean, "true or false"),
}


def read_source_entries(
    value: Any, line: int | None, fail: Fail, locate: Callable[[str], str]
) -> tuple[SourceSettings, ...]:
    """The entries of `sources:`, each file or folder's path made absolute by `locate`;
    problems go to `fail`."""
    if isinstance(value, str | dict):
        value = [value]
    if not isinstance(value, list) or not value:
        fail(line, "expected a list of files, folders or URLs, or mappings with a 'path'")
        return ()
    entries: list[SourceSettings] = []
    first_line: dict[str, int | None] = {}
    for number, entry in enumerate(value, 1):
        source = _entry(entry, number, line, fail)
        if source is None:
            continue
        if not source.is_url:
            source = replace(source, path=locate(source.path))
        if source.path in first_line:
            at = first_line[source.path]
            fail(
                source.line or line,
                f"entry {source.path!r} is listed twice"
                + (f" (first on line {at})" if at else "")
                + "; give each source once, with all its settings",
            )
            continue
        first_line[source.path] = source.line if isinstance(entry, LineDict) else None
        entries.append(source)
    return tuple(entries)


def _entry(entry: Any, number: int, line: int | None, fail: Fail) -> SourceSettings | None:
    if isinstance(entry, str):
        try:
            return SourceSettings(path=v.string(entry), line=line or 0)
        except (TypeError, ValueError):
            fail(line, f"entry {number}: expected a file, a folder or an http(s) feed URL")
            return None
    if not isinstance(entry, LineDict):
        fail(line, f"entry {number}: expected a path or URL, or a mapping with a 'path', "
             f"got {entry!r}")  # fmt: skip
        return None
    label = f"entry {number}"
    found: dict[str, Any] = {}
    failed = False
    for key in entry:
        if key not in KEYS:
            fail(entry.line_of(str(key)), f"{label}: unknown key {key!r}; known keys: "
                 f"{', '.join(KEYS)}")  # fmt: skip
            failed = True
    if entry.get("path") is None:
        fail(entry.line, f"{label}: 'path': expected a file, a folder or an http(s) feed URL "
             "(required)")  # fmt: skip
        return None
    for key, (check, expected) in ENTRY.items():
        if entry.get(key) is None:
            continue
        try:
            found[key] = check(entry[key])
        except (TypeError, ValueError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            where = f"{label} ({entry.get('path')!r})" if key != "path" else label
            fail(entry.line_of(key), f"{where}: {key!r}: expected {expected}{detail}, "
                 f"got {entry[key]!r}")  # fmt: skip
            failed = True
    if failed or "path" not in found:
        return None
    return SourceSettings(**found, line=entry.line)
