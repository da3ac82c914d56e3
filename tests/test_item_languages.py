"""Each item's language: the source's setting, else what the source says (Markdown front
matter, a feed's xml:lang or <language>), else detected from the text; unknown is None, with a
warning naming the item. Kept in the state and shown by `digest items --json`."""

from __future__ import annotations

import json
import sqlite3
from datetime import date

import pytest

from digest.errors import SourceError
from digest.models import Item
from digest.sources.item_languages import settle_languages
from digest.sources.markdown import parse_markdown

from .conftest import Project


def _item(title: str, summary: str = "", language: str | None = None) -> Item:
    return Item(id=title, title=title, date=date(2026, 11, 24), summary=summary, language=language)


def test_markdown_front_matter_says_the_language() -> None:
    [item] = parse_markdown(
        "---\ntitle: Retorno de familias\ndate: 2026-11-24\nlanguage: es-MX\n---\nTexto.\n", "a.md"
    )
    assert item.language == "es"


def test_an_unknown_front_matter_language_names_the_line() -> None:
    with pytest.raises(
        SourceError, match=r"^a\.md:4: 'language': expected one of en, es, fr, got 'de'"
    ):
        parse_markdown("---\ntitle: T\ndate: 2026-11-24\nlanguage: de\n---\nText.\n", "a.md")


def test_the_setting_wins_then_what_the_source_says_then_detection() -> None:
    items = [
        _item("Honduras recibe a familias retornadas desde México", language="en"),  # says en
        _item("Honduras recibe a familias retornadas desde México"),
        _item("Haïti : des milliers de personnes déplacées après les inondations"),
    ]
    settled, warnings = settle_languages(items, None, "desk")
    assert [i.language for i in settled] == ["en", "es", "fr"] and warnings == []
    overridden, _ = settle_languages(items, "es", "desk")
    assert [i.language for i in overridden] == ["es", "es", "es"]


def test_an_item_whose_language_cannot_be_told_is_named() -> None:
    items = [_item("OK"), _item("Haití"), _item("Panamá"), _item("México 2026"),
             _item("Returnees arrive in Guatemala after a long journey north")]  # fmt: skip
    settled, [warning] = settle_languages(items, None, "'Desk' (desk.rss)")
    assert [i.language for i in settled] == [None, None, None, None, "en"]
    assert warning == (
        "'Desk' (desk.rss): the language of 4 item(s) could not be told from their text (too "
        "short, or no language clearly leads), so they count as the default_language: 'OK', 'Haití', 'Panamá' and "
        "1 more; set `language:` on the source to say it"
    )


def test_languages_are_kept_in_the_state_and_shown(project: Project) -> None:
    desk = project.root / "desk"
    desk.mkdir()
    (desk / "short.md").write_text("---\ntitle: Haití\ndate: 2026-11-24\n---\nOK.\n")
    (desk / "es.md").write_text(
        "---\ntitle: Guatemala abre un centro para personas retornadas\ndate: 2026-11-24\n---\n"
        "El centro atenderá a las familias que regresan por vía aérea.\n"
    )
    project.settings(sources=["items", "desk"])
    result = project.run("items", "--json")
    assert result.returncode == 0
    assert f"warning: {desk / 'short.md'}: the language of 1 item(s) could not be told" in (
        result.stderr
    )
    items = {i["title"]: i for i in json.loads(result.stdout)}
    assert items["Haití"]["language"] is None
    assert items["Guatemala abre un centro para personas retornadas"]["language"] == "es"
    assert {i["language"] for t, i in items.items() if i["source"].endswith(".txt")} == {"en"}
    with sqlite3.connect(project.state) as db:
        stored = dict(db.execute("SELECT title, language FROM items"))
    assert (
        stored["Haití"] is None
        and stored["Guatemala abre un centro para personas retornadas"] == "es"
    )
    # read again, nothing changed: no warning a second time (the file is not read again)
    assert "could not be told" not in project.run("items", "--json").stderr


def test_sources_remembered_before_languages_were_read_are_read_once_more(
    project: Project,
) -> None:
    """A state from before this version: its sources' fingerprints have no reading key and its
    items no language. The next pickup reads each source once more and fills them in."""
    project.settings(sources=["items"])
    assert project.run("items", "--json").returncode == 0
    with sqlite3.connect(project.state) as db:
        db.execute(
            "UPDATE sources SET fingerprint = substr(fingerprint, 1, instr(fingerprint, '~') - 1)"
        )
        db.execute("UPDATE items SET language = NULL, content_hash = NULL")
        assert {r[0] for r in db.execute("SELECT fingerprint LIKE '%~%' FROM sources")} == {0}
    sent = json.loads(project.run("send", "--json", "--dry-run", check=True).stdout)
    assert sent["picked_up"]["unchanged_sources"] == 0
    project.run("items", "--json", check=True)
    with sqlite3.connect(project.state) as db:
        assert {r[0] for r in db.execute("SELECT language FROM items")} == {"en"}
        assert {r[0] for r in db.execute("SELECT fingerprint LIKE '%~2:detect' FROM sources")} == {
            1
        }
    again = json.loads(project.run("send", "--json", "--dry-run", check=True).stdout)
    assert again["picked_up"]["unchanged_sources"] == 1
