"""The first stage of a run: read every source, store new items, tag what the state holds."""

from __future__ import annotations

from datetime import datetime

from ..models import TaggedItem
from ..settings import Settings
from ..sources import read_sources
from ..state import State
from ..taxonomy import Taxonomy, tag
from .report import PickupReport


def pick_up(settings: Settings, state: State, taxonomy: Taxonomy, now: datetime) -> PickupReport:
    """Read every source and store its items; a bad source is reported, the rest still load."""
    known = {*taxonomy.regions, *taxonomy.topics}
    result = read_sources(settings.sources, known)
    new = state.add_items(result.items, now)
    return PickupReport(
        new=new, total=len(result.items), files=result.files, problems=result.problems
    )


def tagged_items(state: State, taxonomy: Taxonomy) -> list[TaggedItem]:
    return [
        _with_first_seen(tag(stored.item, taxonomy), stored.first_seen) for stored in state.items()
    ]


def _with_first_seen(tagged: TaggedItem, first_seen: datetime) -> TaggedItem:
    return TaggedItem(
        tagged.item, tagged.regions, tagged.topics, tagged.matches, first_seen, tagged.withheld
    )


def preview_items(
    settings: Settings, taxonomy: Taxonomy, state: State | None, now: datetime
) -> tuple[list[TaggedItem], PickupReport]:
    """Items as a send would see them, without writing anything: `state` (opened read-only, or
    None before the first run) is only read, and items not picked up yet count as first seen
    now."""
    stored = {s.item.id: s for s in state.items()} if state else {}
    result = read_sources(settings.sources, {*taxonomy.regions, *taxonomy.topics})
    items = [_with_first_seen(tag(s.item, taxonomy), s.first_seen) for s in stored.values()]
    for item in result.items:
        if item.id not in stored:
            items.append(_with_first_seen(tag(item, taxonomy), now))
    report = PickupReport(
        new=sum(1 for i in result.items if i.id not in stored),
        total=len(result.items),
        files=result.files,
        problems=result.problems,
    )
    return items, report
