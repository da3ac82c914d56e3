"""Per-source settings: `sources:` entries written as mappings (path, name, language, regions,
require_topic), their errors with file, line and key, and what each setting does to the items,
through the real CLI: default regions for items that name no place, dropping items with no
topic, the items' language, and tags made again when a source's regions change."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from digest.errors import ProblemList, SettingsError
from digest.settings import SourceSettings, load_settings
from digest.taxonomy import load_taxonomy

from .conftest import Project


def _errors(project: Project, text: str) -> str:
    project.config.write_text(text)
    with pytest.raises((SettingsError, ProblemList)) as info:
        load_settings(project.config)
    return str(info.value)


def _general_news(path: Path) -> None:
    """A general-news desk's Markdown items: one on migration naming no place, one on sport
    naming no place, one naming a place (Cartagena, which could be Colombia or Spain)."""
    path.mkdir()
    stories = {
        "returnees.md": ("Returnees get help to find work", "2026-11-23",
                         "A programme for returnees and deported migrants offers jobs."),
        "football.md": ("Local team wins the derby", "2026-11-23",
                        "The home side scored twice in the second half to win the match."),
        "cartagena.md": ("Cartagena festival draws crowds", "2026-11-22",
                         "Thousands of visitors came to Cartagena for the festival of the sea."),
    }  # fmt: skip
    for name, (title, when, text) in stories.items():
        (path / name).write_text(f"---\ntitle: {title}\ndate: {when}\n---\n{text}\n")


def _items(project: Project, *args: str) -> dict[str, dict[str, Any]]:
    result = project.run("items", "--json", *args)
    assert result.returncode == 0, result.stderr
    return {i["title"]: i for i in json.loads(result.stdout)}


# -- reading the settings ---------------------------------------------------------------------
def test_a_source_may_be_a_string_or_a_mapping(project: Project) -> None:
    project.config.write_text(
        "sources:\n"
        "  - items\n"
        "  - path: https://partner.example.org/feed.xml\n"
        "    name: Partner X\n"
        "    language: es-MX\n"
        "    regions: [Caribbean]\n"
        "    require_topic: true\n"
        "  - {path: ./items/office-news-2020.txt, language: en}\n"
    )
    settings = load_settings(project.config)
    plain, partner, listing = settings.sources
    assert plain == SourceSettings(str(project.root / "items"))
    assert partner == SourceSettings(
        "https://partner.example.org/feed.xml",
        name="Partner X",
        language="es",
        regions=("Caribbean",),
        require_topic=True,
    )
    assert (partner.line, listing.line) == (3, 8)
    assert listing.path == str(project.root / "items" / "office-news-2020.txt")
    assert partner.label == "Partner X" and plain.label == plain.path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sources:\n  - path: items\n    language: de\n",
            ":3: setting 'sources', entry 1 ('items'): 'language': expected one of en, es, fr, "
            "got 'de'",
        ),
        (
            "sources:\n  - items\n  - path: items\n    colour: red\n",
            ":4: setting 'sources', entry 2: unknown key 'colour'; known keys: path, name, "
            "language, regions, require_topic",
        ),
        (
            "sources:\n  - name: Partner X\n",
            ":2: setting 'sources', entry 1: 'path': expected a file, a folder or an http(s) "
            "feed URL (required)",
        ),
        (
            "sources:\n  - path: items\n    require_topic: yes please\n",
            ":3: setting 'sources', entry 1 ('items'): 'require_topic': expected true or false, "
            "got 'yes please'",
        ),
        (
            "sources:\n  - path: items\n    regions: 7\n",
            ":3: setting 'sources', entry 1 ('items'): 'regions': expected a list of region "
            "names, got 7",
        ),
        (
            "sources:\n  - items\n  - path: ./items/\n    name: Again\n",
            ":3: setting 'sources', entry 'items' is listed twice; give each source once",
        ),
        ("sources:\n  - [items]\n", ":1: setting 'sources', entry 1: expected a path or URL"),
        ("sources: 12\n", ":1: setting 'sources', expected a list of files, folders or URLs"),
        (
            "sources:\n  - path: missing-folder\n",
            ":2: setting 'sources': expected existing files, folders or URLs (not found: ",
        ),
    ],
)
def test_source_errors_name_the_file_line_and_key(
    project: Project, text: str, expected: str
) -> None:
    message = _errors(project, text)
    assert f"{project.config}{expected}" in message.replace(str(project.root / "items"), "items")


def test_unknown_regions_stop_check_and_send_naming_the_line(project: Project) -> None:
    project.settings(
        sources=["items", {"path": "items/office-news-2020.txt", "regions": ["Carribean"]}]
    )
    expected = (
        f"error: {project.config}:7: setting 'sources', "
        f"'{project.root / 'items' / 'office-news-2020.txt'}': 'regions': unknown region "
        "'Carribean' (did you mean 'Caribbean'?)"
    )
    check = project.run("check")
    assert check.returncode == 2 and expected in check.stderr
    send = project.run("send")
    assert send.returncode == 2 and expected in send.stderr
    assert not project.maildir_messages()
    items = project.run("items", "--json")  # picks up without the unknown region
    assert items.returncode == 0 and expected.replace("error:", "warning:") in items.stderr
    assert len(json.loads(items.stdout)) == 10


def test_region_names_are_matched_in_any_case(project: Project) -> None:
    _general_news(project.root / "desk")
    project.settings(sources=[{"path": "desk", "regions": ["caribbean"]}])
    items = _items(project)
    assert items["Local team wins the derby"]["regions"] == ["Caribbean"]


# -- what the settings do -----------------------------------------------------------------------
def test_regions_are_the_default_for_items_that_name_no_place(project: Project) -> None:
    _general_news(project.root / "desk")
    project.settings(
        sources=["items", {"path": "desk", "name": "News desk", "regions": ["Caribbean"]}]
    )
    items = _items(project)
    derby = items["Local team wins the derby"]
    assert derby["regions"] == ["Caribbean"]
    assert derby["matches"]["Caribbean"] == ["(source default)"]
    assert derby["source_name"] == "News desk"
    assert derby["source"] == str(project.root / "desk" / "football.md")
    # an ambiguous place the source's default does not cover stays untagged, and says why
    cartagena = items["Cartagena festival draws crowds"]
    assert cartagena["regions"] == ["Caribbean"]  # named no usable place: the default
    assert "Cartagena" in cartagena["withheld"]
    assert (
        "ambiguous place: could be Colombia (South America) or Spain (Rest of the world)"
        in (cartagena["withheld"]["Cartagena"])
    )
    office = next(i for i in items.values() if i["source"].endswith("office-news-2020.txt"))
    assert office["source_name"] == office["source"] and office["withheld"] == {}


def test_an_ambiguous_place_takes_the_sources_region_when_it_is_one_of_its_candidates(
    project: Project,
) -> None:
    _general_news(project.root / "desk")
    project.settings(sources=[{"path": "desk", "regions": ["Rest of the world"]}])
    cartagena = _items(project)["Cartagena festival draws crowds"]
    assert cartagena["regions"] == ["Rest of the world"]
    assert cartagena["matches"]["Rest of the world"] == ["Cartagena (source default)"]
    assert cartagena["withheld"] == {}


def test_require_topic_drops_items_that_match_no_topic(project: Project) -> None:
    _general_news(project.root / "desk")
    project.settings(sources=[{"path": "desk", "require_topic": True}])
    result = project.run("items", "--json")
    assert (
        "warning: 2 item(s) left out: they match no topic and their source says " in result.stderr
    )
    titles = {i["title"] for i in json.loads(result.stdout)}
    assert titles == {"Returnees get help to find work"}
    sent = project.run("send", "--json")
    assert sent.returncode == 0
    messages = project.maildir_messages()
    assert messages and all(
        "Local team" not in m.get_body(("plain",)).get_content() for m in messages
    )

    project.settings(sources=[{"path": "desk", "require_topic": False}])  # kept again, unread
    assert len(_items(project)) == 3
    send = json.loads(project.run("send", "--json", check=True).stdout)["picked_up"]
    assert send["unchanged_sources"] == 3


def test_editing_a_sources_regions_tags_its_items_again(project: Project) -> None:
    _general_news(project.root / "desk")
    project.settings(sources=["items", {"path": "desk", "regions": ["Caribbean"]}])
    assert _items(project)["Local team wins the derby"]["regions"] == ["Caribbean"]
    taxonomy = load_taxonomy()
    with sqlite3.connect(project.state) as db:
        keys = dict(db.execute("SELECT source, tagged_with FROM items"))
    assert keys[str(project.root / "desk" / "football.md")].startswith(taxonomy.fingerprint + "+")
    assert keys[str(project.root / "items" / "office-news-2020.txt")] == taxonomy.fingerprint

    project.settings(sources=["items", {"path": "desk", "regions": ["Central America"]}])
    sent = json.loads(project.run("send", "--json", "--dry-run", check=True).stdout)
    assert sent["picked_up"]["unchanged_sources"] == 4  # nothing read again
    items = _items(project)
    assert items["Local team wins the derby"]["regions"] == ["Central America"]
    assert items["Local team wins the derby"]["matches"]["Central America"] == ["(source default)"]
    with sqlite3.connect(project.state) as db:
        again = dict(db.execute("SELECT source, tagged_with FROM items"))
    assert (
        again[str(project.root / "desk" / "football.md")]
        != keys[str(project.root / "desk" / "football.md")]
    )
    office = str(project.root / "items" / "office-news-2020.txt")
    assert again[office] == keys[office]


def test_a_sources_language_overrides_what_it_says_and_reads_it_again(project: Project) -> None:
    desk = project.root / "desk"
    _general_news(desk)
    (desk / "note.md").write_text(
        "---\ntitle: Nota breve\ndate: 2026-11-24\nlanguage: es\n---\nUna nota en español.\n"
    )
    project.settings(sources=[{"path": "desk"}])
    items = _items(project)
    assert items["Nota breve"]["language"] == "es"  # the front matter says it
    assert items["Local team wins the derby"]["language"] == "en"  # detected
    project.settings(sources=[{"path": "desk", "language": "fr"}])
    items = _items(project)  # the files did not change, but what they are read as did
    assert {i["language"] for i in items.values()} == {"fr"}
    with sqlite3.connect(project.state) as db:
        languages = {row[0] for row in db.execute("SELECT language FROM items")}
    assert languages == {"fr"}


def test_the_most_specific_entry_gives_a_files_settings(project: Project) -> None:
    _general_news(project.root / "desk")
    project.settings(
        sources=[
            {"path": "desk", "name": "News desk", "regions": ["Caribbean"]},
            {"path": "desk/football.md", "name": "Sports page", "regions": ["North America"]},
        ]
    )
    items = _items(project)
    assert len(items) == 3
    derby = items["Local team wins the derby"]
    assert (derby["source_name"], derby["regions"]) == ("Sports page", ["North America"])
    assert items["Returnees get help to find work"]["source_name"] == "News desk"
