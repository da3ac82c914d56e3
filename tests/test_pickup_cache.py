"""A large source costs its full price once: an unchanged file is not read again, an unchanged
item is not rewritten, and tags are made only for new or changed items, or when the taxonomy
changes."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from digest.send import pick_up, tagged_items
from digest.settings import load_settings
from digest.state import State
from digest.taxonomy import load_taxonomy

from .conftest import Project

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _feed(path: Path, entries: int) -> None:
    items = "".join(
        f"<item><title>Returnees {n} arrive in Honduras</title>"
        f"<link>https://news.example.org/{n}</link><guid>story-{n}</guid>"
        f"<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>"
        f"<description>Story {n} about migrant workers in Guatemala.</description></item>"
        for n in range(entries)
    )
    path.write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{items}'
        "</channel></rss>"
    )


def test_an_unchanged_feed_is_not_read_again_and_its_items_not_tagged_again(
    any_project: Project,
) -> None:
    project = any_project
    feed = project.root / "items" / "wire.rss"
    _feed(feed, 500)
    settings = load_settings(project.config)
    taxonomy = load_taxonomy()
    with State(settings.state) as state:
        first = pick_up(settings, state, taxonomy, NOW)
        assert first.new == first.total > 500 and first.unchanged == 0
        stored = state.items()
        assert {s.tagged_with for s in stored} == {taxonomy.fingerprint}
        wire = next(s for s in stored if s.item.id == "story-7")
        assert wire.tags is not None and wire.tags["regions"] == ["Central America"]

        second = pick_up(settings, state, taxonomy, NOW)
        assert (second.new, second.total, second.unchanged) == (0, 0, first.files)

        os.utime(feed)  # touched, not changed: read for its hash, not parsed
        third = pick_up(settings, state, taxonomy, NOW)
        assert (third.total, third.unchanged) == (0, first.files)

        _feed(feed, 501)  # one story more: the feed is read, one item is new
        fourth = pick_up(settings, state, taxonomy, NOW)
        assert fourth.new == 1 and fourth.total == 501
        assert [t.id for t in tagged_items(state, taxonomy) if t.id == "story-500"]


def test_a_changed_taxonomy_tags_every_item_again(any_project: Project) -> None:
    project = any_project
    settings = load_settings(project.config)
    with State(settings.state) as state:
        pick_up(settings, state, load_taxonomy(), NOW)
        custom = project.root / "taxonomy.yaml"
        shipped = Path(__file__).resolve().parent.parent / "digest" / "data" / "taxonomy.yaml"
        custom.write_text(shipped.read_text() + "\n# edited by staff\n")
        edited = load_taxonomy(custom)
        assert edited.fingerprint != load_taxonomy().fingerprint
        pick_up(settings, state, edited, NOW)
        assert {s.tagged_with for s in state.items()} == {edited.fingerprint}
