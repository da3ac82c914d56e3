"""How each source's items are tagged: with its `regions:` as the default for items that name no
place, and without the items that match no topic where it says `require_topic: true`.

Tags are kept in the state with a key: the taxonomy's fingerprint, plus a short hash of the
source's settings that change tags (its regions and require_topic) when it has any. Editing a
source's `regions:` changes the key of its items, so they are tagged again; other sources'
items are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import SettingsError
from ..models import Item, TaggedItem
from ..settings import Settings, SourceSettings, source_for
from ..subscribers.fields import check_names
from ..taxonomy import Taxonomy, tag
from ..yamlfile import where

NO_TOPIC = "matches no topic, and its source says require_topic"


def checked_sources(
    settings: Settings, taxonomy: Taxonomy
) -> tuple[tuple[SourceSettings, ...], list[SettingsError]]:
    """The sources with their `regions:` spelled as the taxonomy spells them, and an error
    naming the settings file, line and source for each region it does not know (left out:
    a send stops on these errors, a pickup goes on without them)."""
    sources: list[SourceSettings] = []
    problems: list[SettingsError] = []
    for source in settings.sources:
        regions, unknown = check_names(list(source.regions), "region", taxonomy.regions)
        problems += [
            SettingsError(
                f"{where(settings.path, source.line)}: setting 'sources', {source.label!r}: "
                f"'regions': {problem}",
                hint="use the name of a region of the taxonomy",
            )
            for problem in unknown
        ]
        sources.append(replace(source, regions=regions) if source.regions else source)
    return tuple(sources), problems


@dataclass
class SourceTagging:
    """Tags items as their sources' settings say, and the key they are kept with."""

    taxonomy: Taxonomy
    sources: tuple[SourceSettings, ...]
    _found: dict[str, SourceSettings | None] = field(default_factory=dict, repr=False)

    def source(self, location: str) -> SourceSettings | None:
        if location not in self._found:
            self._found[location] = source_for(location, self.sources)
        return self._found[location]

    def key(self, location: str) -> str:
        """What an item's stored tags must have been made with to still hold."""
        source = self.source(location)
        extra = source.tagging_key if source is not None else ""
        return f"{self.taxonomy.fingerprint}+{extra}" if extra else self.taxonomy.fingerprint

    def keys(self) -> set[str]:
        return {self.taxonomy.fingerprint} | {
            f"{self.taxonomy.fingerprint}+{s.tagging_key}" for s in self.sources if s.tagging_key
        }

    def tags(self, item: Item) -> dict[str, Any]:
        """The tags to keep for an item (JSON), `dropped` saying why when it is left out."""
        tagged = self._tag(item)
        tags: dict[str, Any] = {
            "regions": list(tagged.regions),
            "topics": list(tagged.topics),
            "matches": {k: list(v) for k, v in tagged.matches.items()},
            "withheld": dict(tagged.withheld),
        }
        if self._dropped(item, tagged):
            tags["dropped"] = NO_TOPIC
        return tags

    def tag(self, item: Item) -> TaggedItem | None:
        """The item tagged, or None when its source drops it (require_topic, no topic)."""
        tagged = self._tag(item)
        return None if self._dropped(item, tagged) else tagged

    def _tag(self, item: Item) -> TaggedItem:
        source = self.source(item.source)
        return tag(item, self.taxonomy, default_regions=source.regions if source else ())

    def _dropped(self, item: Item, tagged: TaggedItem) -> bool:
        source = self.source(item.source)
        return source is not None and source.require_topic and not tagged.topics
