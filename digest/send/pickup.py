"""The first stage of a run: read every source, store new items, tag what the state holds.

Tags are kept in the state with a key (the taxonomy's fingerprint, and the source's settings
that change tags, see `source_tagging`): a run tags only the items that are new or changed, or
whose key changed, and an unchanged source is not even read again (a feed URL costs one 304),
so a large feed costs its full price once. A source that fails keeps its earlier items: they
stay in the state, and the failure is in the report (and in the state's `sources` table).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..models import Item, TaggedItem
from ..settings import Settings
from ..state import State, StoredItem
from ..taxonomy import Taxonomy
from .report import PickupReport
from .source_tagging import SourceTagging, checked_sources

if TYPE_CHECKING:  # the readers (feeds, HTML, fetching: 5 MB) load where items are read, not
    from ..sources import FetchLimits  # in a send's worker processes


def pick_up(
    settings: Settings,
    state: State,
    taxonomy: Taxonomy,
    now: datetime,
    limits: FetchLimits | None = None,
) -> PickupReport:
    """Read every source and store its items; a bad source is reported, the rest still load.
    New and changed items are tagged here, once, and their tags kept."""
    sources, unusable = checked_sources(settings, taxonomy)
    known = {*taxonomy.regions, *taxonomy.topics}
    from ..sources import read_sources

    result = read_sources(sources, known, seen=state.sources(), limits=limits)
    new = state.add_items(result.items, now)
    state.remember_sources(result.records)
    tagging = SourceTagging(taxonomy, sources)
    stale = [
        s
        for s in state.items(tagged_with_other_than=tagging.keys())
        if s.tagged_with != tagging.key(s.item.source)
    ]
    by_key: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for stored in stale:
        by_key[tagging.key(stored.item.source)].append((stored.item.id, tagging.tags(stored.item)))
    for key, tags in by_key.items():
        state.save_tags(tags, key)
    return PickupReport(
        new=new,
        total=len(result.items),
        files=result.files,
        problems=[*unusable, *result.problems],
        unchanged=result.unchanged,
        warnings=result.warnings,
        failed=result.failed,
        dropped=sum(1 for tags in by_key.values() for _, t in tags if t.get("dropped")),
    )


def tagged_items(
    state: State,
    taxonomy: Taxonomy,
    settings: Settings | None = None,
    full: Callable[[], Taxonomy] | None = None,
) -> list[TaggedItem]:
    """Every stored item with its tags (as kept, or made now where they no longer hold),
    except those their source drops (`require_topic`). Without `settings`, as if every
    source were a plain path. With `full`, `taxonomy` may be one without its lexicon (a
    worker process's: the run has just tagged every item), and `full` loads the whole one
    should any tag be out of date."""
    sources = checked_sources(settings, taxonomy)[0] if settings is not None else ()
    tagging = SourceTagging(taxonomy, sources)
    stored = state.items()
    if full is not None and any(s.tagged_with != tagging.key(s.item.source) for s in stored):
        tagging = SourceTagging(full(), sources)
    found = (_tagged(item, tagging) for item in stored)
    return [t for t in found if t is not None]


def tagged_items_by_id(
    state: State, taxonomy: Taxonomy, ids: Iterable[str], settings: Settings | None = None
) -> list[TaggedItem]:
    """These stored items with their tags (for a digest shown again on the web)."""
    sources = checked_sources(settings, taxonomy)[0] if settings is not None else ()
    tagging = SourceTagging(taxonomy, sources)
    found = (_tagged(stored, tagging) for stored in state.items_by_id(ids))
    return [t for t in found if t is not None]


def _tagged(stored: StoredItem, tagging: SourceTagging) -> TaggedItem | None:
    tags = stored.tags if stored.tagged_with == tagging.key(stored.item.source) else None
    if tags is None:
        tagged = tagging.tag(stored.item)
        return _with_first_seen(tagged, stored.first_seen) if tagged is not None else None
    if tags.get("dropped"):
        return None
    return _from_tags(stored.item, tags, stored.first_seen)


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
    now. Sources unchanged since the state last read them are not read again (their items
    are in it); nothing is remembered of the others."""
    sources, unusable = checked_sources(settings, taxonomy)
    tagging = SourceTagging(taxonomy, sources)
    stored = {s.item.id: s for s in state.items()} if state else {}
    seen = state.sources() if state else None
    from ..sources import read_sources

    result = read_sources(sources, {*taxonomy.regions, *taxonomy.topics}, seen=seen)
    items = [t for t in (_tagged(s, tagging) for s in stored.values()) if t is not None]
    for item in result.items:
        if item.id not in stored and (tagged := tagging.tag(item)) is not None:
            items.append(_with_first_seen(tagged, now))
    report = PickupReport(
        new=sum(1 for i in result.items if i.id not in stored),
        total=len(result.items),
        files=result.files,
        problems=[*unusable, *result.problems],
        unchanged=result.unchanged,
        warnings=result.warnings,
        failed=result.failed,
    )
    return items, report
