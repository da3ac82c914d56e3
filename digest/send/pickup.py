"""The first stage of a run: read every source, store new items, tag what the state holds.

Tags are kept in the state with the taxonomy's fingerprint: a run tags only the items that are
new or changed (or all of them once the taxonomy changes), and an unchanged source is not even
read again, so a large feed costs its full price once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..models import Item, TaggedItem
from ..settings import Settings
from ..sources import read_sources
from ..state import State, StoredItem
from ..taxonomy import Taxonomy, tag
from .report import PickupReport


def pick_up(settings: Settings, state: State, taxonomy: Taxonomy, now: datetime) -> PickupReport:
    """Read every source and store its items; a bad source is reported, the rest still load.
    New and changed items are tagged here, once, and their tags kept."""
    known = {*taxonomy.regions, *taxonomy.topics}
    result = read_sources(settings.sources, known, seen=state.sources())
    new = state.add_items(result.items, now)
    state.remember_sources(result.records)
    untagged = state.items(tagged_with_other_than=taxonomy.fingerprint)
    if untagged:
        state.save_tags(
            [(s.item.id, _tags_of(tag(s.item, taxonomy))) for s in untagged], taxonomy.fingerprint
        )
    return PickupReport(
        new=new,
        total=len(result.items),
        files=result.files,
        problems=result.problems,
        unchanged=result.unchanged,
    )


def tagged_items(
    state: State, taxonomy: Taxonomy, full: Callable[[], Taxonomy] | None = None
) -> list[TaggedItem]:
    """Every stored item with its tags: as kept, or made now where the taxonomy changed.
    With `full`, `taxonomy` may be one without its lexicon (a worker process's: the run has
    just tagged every item), and `full` loads the whole one should any tag be out of date."""
    stored = state.items()
    if full is not None and any(s.tagged_with != taxonomy.fingerprint for s in stored):
        taxonomy = full()
    return [_tagged(item, taxonomy) for item in stored]


def _tagged(stored: StoredItem, taxonomy: Taxonomy) -> TaggedItem:
    tags = stored.tags if stored.tagged_with == taxonomy.fingerprint else None
    if tags is None:
        return _with_first_seen(tag(stored.item, taxonomy), stored.first_seen)
    return _from_tags(stored.item, tags, stored.first_seen)


def _tags_of(tagged: TaggedItem) -> dict[str, Any]:
    return {
        "regions": list(tagged.regions),
        "topics": list(tagged.topics),
        "matches": {k: list(v) for k, v in tagged.matches.items()},
        "withheld": dict(tagged.withheld),
    }


def _from_tags(item: Item, tags: dict[str, Any], first_seen: datetime) -> TaggedItem:
    return TaggedItem(
        item,
        tuple(tags["regions"]),
        tuple(tags["topics"]),
        {k: tuple(v) for k, v in tags["matches"].items()},
        first_seen,
        dict(tags.get("withheld", {})),
    )


def _with_first_seen(tagged: TaggedItem, first_seen: datetime) -> TaggedItem:
    return TaggedItem(
        tagged.item, tagged.regions, tagged.topics, tagged.matches, first_seen, tagged.withheld
    )


def preview_items(
    settings: Settings, taxonomy: Taxonomy, state: State | None, now: datetime
) -> tuple[list[TaggedItem], PickupReport]:
    """Items as a send would see them, without writing anything: `state` (opened read-only, or
    None before the first run) is only read, and items not picked up yet count as first seen
    now. Every source is read whole: nothing is remembered of it."""
    stored = {s.item.id: s for s in state.items()} if state else {}
    result = read_sources(settings.sources, {*taxonomy.regions, *taxonomy.topics})
    items = [_tagged(s, taxonomy) for s in stored.values()]
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
