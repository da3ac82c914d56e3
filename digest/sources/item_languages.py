"""Each item's language: the source's `language:` setting when it has one (a feed's own
`<language>` is often a CMS default), else what the source says (a feed's `xml:lang` or
`<language>`, a Markdown item's `language:`), else detected from the item's text (lingua,
`digest.languages`). An item whose language cannot be told keeps None, with a warning;
selection counts it as the `default_language`."""

from __future__ import annotations

from dataclasses import replace

from ..languages import detect_language
from ..models import Item

SHOWN = 3  # items named in one warning


def settle_languages(
    items: list[Item], language: str | None, label: str
) -> tuple[list[Item], list[str]]:
    """The items with their languages settled, and a warning naming those left unknown."""
    settled: list[Item] = []
    unknown: list[str] = []
    for item in items:
        found = language or item.language or detect_language(f"{item.title}\n{item.summary}")
        if found is None:
            unknown.append(repr(item.title))
        settled.append(item if found == item.language else replace(item, language=found))
    if not unknown:
        return settled, []
    more = f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else ""
    return settled, [
        f"{label}: the language of {len(unknown)} item(s) could not be told from their text "
        f"(too short, or no language clearly leads), so they count as the default_language: "
        f"{', '.join(unknown[:SHOWN])}{more}; set `language:` on the source to say it"
    ]
