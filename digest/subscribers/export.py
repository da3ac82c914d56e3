"""`digest subscribers export`: subscribers.yaml written back with every web change applied,
and which settings each entry of the file spells out."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ..models import Subscriber, address_key
from ..yamlfile import LineDict, YamlSyntaxError, read_yaml
from .fields import DEFAULT, SETTINGS


def written_settings(path: Path) -> dict[str, set[str]]:
    """Which settings each subscriber's entry in the file spells out (by casefolded address)."""
    try:
        data = read_yaml(path)
    except (OSError, YamlSyntaxError):
        return {}
    entries = data.get("subscribers") if isinstance(data, LineDict) else None
    result: dict[str, set[str]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("email"), str):
            result[address_key(entry["email"])] = {k for k in entry if k in SETTINGS}
    return result


class _FlowList(list):  # type: ignore[type-arg]
    """Written as `[a, b]`, the way staff write regions and topics."""


def subscribers_yaml(subscribers: Iterable[Subscriber], note: str = "") -> str:
    """A `subscribers.yaml` holding these subscribers, writing only what differs from the
    defaults; `parse_subscribers` reads it back to the same subscribers."""

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(
        _FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
    )
    entries = []
    for s in subscribers:
        entry: dict[str, Any] = {"email": s.email}
        if s.name:
            entry["name"] = s.name
        if s.regions:
            entry["regions"] = _FlowList(s.regions)
        if s.topics:
            entry["topics"] = _FlowList(s.topics)
        if s.group_by != DEFAULT.group_by:
            entry["group_by"] = s.group_by
        if s.order != DEFAULT.order:
            entry["order"] = s.order
        if s.frequency != DEFAULT.frequency:
            entry["frequency"] = s.frequency
        if s.timezone:
            entry["timezone"] = s.timezone
        if s.language:
            entry["language"] = s.language
        if s.item_languages:
            entry["item_languages"] = _FlowList(s.item_languages)
        entries.append(entry)
    body = yaml.dump(
        {"subscribers": entries},
        Dumper=Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    header = "".join(f"# {line}\n" for line in note.splitlines())
    return header + body
