"""Feeds as the web serves them: read in feedparser's tolerant mode with a warning naming the
feed and the problem (a blank line before `<?xml`, a stray character 878 lines in, HTML
entities, encodings that lie), refused only when nothing usable comes out; relative links
resolved; each entry's language from `xml:lang` or `<language>`.

The feeds are written for these tests (tests/data/feeds/ and the builders below), shaped as
WordPress, news-site CMSs and Atom publishers write them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from digest.errors import SourceError
from digest.sources import read_sources
from digest.sources.feed import html_to_text, parse_feed, repair_mixed_utf8

from .conftest import DATA, Project
from .feed_server import Route, feed_server

FEEDS = DATA / "feeds"


def newspaper_rss(entries: int = 81) -> list[str]:
    """A Spanish newspaper's RSS, one element a line as such CMSs write it: 12 lines an item."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "  <channel>",
        "    <title>Diario regional</title>",
        "    <link>https://diario.example.org/</link>",
        "    <language>es</language>",
    ]
    for n in range(entries):
        lines += [
            "    <item>",
            f"      <title>Noticia {n}: nuevas llegadas de migrantes a la frontera</title>",
            f"      <link>https://diario.example.org/noticia-{n}</link>",
            f"      <guid>https://diario.example.org/noticia-{n}</guid>",
            f"      <pubDate>Mon, 23 Nov 2026 10:{n % 60:02d}:00 +0100</pubDate>",
            "      <dc:creator>Redacción</dc:creator>",
            f"      <description><![CDATA[<p>Crónica {n} de la llegada de familias.</p>]]>"
            "</description>",
            "      <category>Sociedad</category>",
            "      <category>Migración</category>",
            "      <category>Centroamérica</category>",
            "      <comments>https://diario.example.org/comentarios</comments>",
            "    </item>",
        ]
    return [*lines, "  </channel>", "</rss>"]


def test_a_blank_line_before_the_xml_declaration_is_read_with_a_warning() -> None:
    location = str(FEEDS / "wordpress-es.rss")
    assert (FEEDS / "wordpress-es.rss").read_bytes().startswith(b"\n<?xml")
    result = read_sources([location])
    assert not result.problems
    assert [i.title for i in result.items] == [
        "Honduras recibe a 120 personas retornadas desde México",
        "Taller sobre trata de personas en Ciudad de Panamá",
        "Resultados de la jornada deportiva del fin de semana",
    ]
    [warning] = result.warnings
    # the line as the file has it: feedparser counts one more, having added a declaration
    assert warning == (
        f"feed {location} is not well-formed XML (line 2: XML or text declaration not at start "
        "of entity); read in tolerant mode"
    )
    first = result.items[0]
    # the relative <link> resolved against the site's link; language from <language>es-ES
    assert first.link == "https://socios.example.org/2026/11/24/honduras-recibe-retornados/"
    assert first.language == "es"
    assert first.summary.startswith("El Centro de Atención al Migrante Retornado")
    assert first.categories == ("Retorno",)


def test_a_stray_character_878_lines_in_is_read_with_a_warning_naming_the_line(
    tmp_path: Path,
) -> None:
    lines = newspaper_rss(81)
    assert lines[877].strip() == "<category>Sociedad</category>"
    lines[877] = lines[877].replace("Sociedad", "Soci\x0bedad")
    feed = tmp_path / "diario.rss"
    feed.write_text("\n".join(lines), encoding="utf-8")
    result = read_sources([str(feed)])
    assert len(result.items) == 81 and not result.problems
    assert result.warnings == [
        f"feed {feed} is not well-formed XML (line 878: not well-formed (invalid token)); "
        "read in tolerant mode"
    ]
    assert result.items[72].categories == ("Sociedad", "Migración", "Centroamérica")


def test_html_entities_undefined_in_xml_are_decoded() -> None:
    result = read_sources([str(FEEDS / "entities.rss")])
    first, second = result.items
    assert first.title == (
        "Guatemala y México firman acuerdo sobre movilidad laboral — trabajadores temporales"
    )
    assert (
        first.summary
        == "Los cancilleres acordaron ampliar el programa de trabajadores agrícolas temporales…"
    )
    assert second.title == "Costa Rica abre oficina de asilo en la frontera norte"
    [warning] = result.warnings
    assert "is not well-formed XML (line 4: undefined entity); read in tolerant mode" in warning
    assert {i.language for i in result.items} == {"es"}  # detected: the feed does not say


def test_a_feed_in_windows_1252_that_says_utf_8() -> None:
    text = (FEEDS / "entities.rss").read_text().replace("&eacute;", "é").replace("&nbsp;", " ")
    text = text.replace("&mdash;", "-").replace("&iacute;", "í").replace("&hellip;", "...")
    read = parse_feed(text.encode("cp1252"), "cp1252.rss")
    assert read.items[0].title.startswith("Guatemala y México firman")
    assert (
        read.items[1].summary
        == "La oficina atenderá solicitudes de refugio de personas nicaragüenses."
    )
    assert read.warnings == [
        "feed cp1252.rss: document declared as utf-8, but parsed as windows-1252"
    ]


def test_a_utf_8_feed_with_a_few_windows_1252_bytes_keeps_its_accents() -> None:
    text = (FEEDS / "entities.rss").read_text().replace("&eacute;", "é").replace("&nbsp;", " ")
    text = text.replace("&mdash;", "-").replace("&iacute;", "í").replace("&hellip;", "...")
    data = text.encode("utf-8").replace(
        "nicaragüenses".encode(), "nicarag\xfcenses".encode("cp1252")
    )
    assert repair_mixed_utf8(data)[1] == 1
    read = parse_feed(data, "mixed.rss")
    assert read.items[0].title.startswith("Guatemala y México firman")  # not "MÃ©xico"
    assert read.items[1].summary.endswith("personas nicaragüenses.")
    assert read.warnings == [
        "feed mixed.rss: 1 byte(s) are not UTF-8 although the feed is; read as Windows-1252"
    ]


def test_a_feed_in_latin_1_as_it_says_is_left_alone() -> None:
    text = (FEEDS / "entities.rss").read_text().replace("utf-8", "iso-8859-1")
    text = text.replace("&nbsp;", " ").replace("&eacute;", "é").replace("&mdash;", "-")
    text = text.replace("&iacute;", "í").replace("&hellip;", "...")
    data = text.encode("latin-1")
    assert repair_mixed_utf8(data) == (data, 0)
    read = parse_feed(data, "latin1.rss")
    assert read.items[0].title.startswith("Guatemala y México") and read.warnings == []


def test_an_atom_feed_with_xml_base_and_xml_lang_per_entry() -> None:
    result = read_sources([str(FEEDS / "caribbean-fr.atom")])
    haiti, dominicana = result.items
    assert haiti.link == "https://caraibes.example.org/actualites/haiti/inondations-novembre"
    assert dominicana.link == "https://caraibes.example.org/es/rd/registro-trabajadores"
    assert (haiti.language, dominicana.language) == ("fr", "es")
    assert haiti.summary.startswith("Plus de 5\xa0000 personnes") or haiti.summary.startswith(
        "Plus de 5 000 personnes"
    )
    assert not result.warnings and not result.problems


def test_relative_links_with_nothing_to_resolve_them_against_are_left_out() -> None:
    feed = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>No site link</title>
<item><title>Migrants return to Honduras</title><link>/news/1</link>
<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>Asylum requests rise in Mexico</title><link>javascript:alert(1)</link>
<pubDate>Mon, 23 Nov 2026 11:00:00 GMT</pubDate></item></channel></rss>"""
    read = parse_feed(feed, "nolinks.rss", language="en")
    assert [i.link for i in read.items] == [None, None]
    [warning] = read.warnings
    assert warning.startswith("feed nolinks.rss: 2 link(s) that are not http(s) addresses")
    assert "'Migrants return to Honduras', 'Asylum requests rise in Mexico'" in warning


def test_entries_without_a_date_are_skipped_and_named() -> None:
    feed = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
<link>https://wire.example.org/</link>
<item><title>Dated story on asylum</title><link>https://wire.example.org/1</link>
<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>Undated story on asylum</title><link>https://wire.example.org/2</link></item>
<item><link>https://wire.example.org/3</link><pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>
</item></channel></rss>"""
    read = parse_feed(feed, "wire.rss", label="'Wire' (wire.rss)", language="en")
    assert [i.title for i in read.items] == ["Dated story on asylum"]
    assert read.warnings == [
        "feed 'Wire' (wire.rss): skipped 2 entry(ies) without a title or a date: "
        "'Undated story on asylum', entry 3"
    ]


def test_a_feed_with_no_usable_entry_is_refused() -> None:
    feed = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
<item><title>Undated</title></item></channel></rss>"""
    with pytest.raises(SourceError, match=r"^wire\.rss: no usable entries: none of its 1 entry"):
        parse_feed(feed, "wire.rss")


def test_a_cut_short_feed_is_refused_naming_the_line() -> None:
    with pytest.raises(
        SourceError,
        match=r"broken\.rss: not a readable RSS or Atom feed: line 3: no element found; read in "
        r"tolerant mode, none of its 1 entry\(ies\) has both a title and a date",
    ):
        parse_feed((DATA / "broken.rss").read_bytes(), "broken.rss")


@pytest.mark.parametrize(
    "data",
    [(FEEDS / "not-a-feed.html").read_bytes(), b"", b"just some text, no markup at all"],
)
def test_what_is_not_a_feed_is_refused(data: bytes) -> None:
    with pytest.raises(SourceError, match=r"^page: not a readable RSS or Atom feed"):
        parse_feed(data, "page")


def test_a_well_formed_feed_with_no_entries_yet_is_fine() -> None:
    read = parse_feed(b'<?xml version="1.0"?><rss version="2.0"><channel><title>New</title>'
                      b"</channel></rss>", "new.rss")  # fmt: skip
    assert (read.items, read.warnings) == ([], [])


def test_a_feed_in_a_language_digest_does_not_read_is_said_once() -> None:
    feed = newspaper_rss(2)
    feed[5] = "    <language>de-DE</language>"
    read = parse_feed("\n".join(feed).encode(), "zeitung.rss")
    assert [i.language for i in read.items] == [None, None]
    [warning] = read.warnings
    assert warning == (
        "feed zeitung.rss says its language is 'de-DE', which digest does not read (en, es, "
        "fr); its items' language is detected from their text"
    )


def test_control_characters_are_dropped_from_text() -> None:
    assert html_to_text("<p>Soci\x0bedad\x01</p>") == "Sociedad"


def test_an_http_charset_that_lies_is_overridden(tmp_path: Path) -> None:
    body = (FEEDS / "caribbean-fr.atom").read_bytes()
    with feed_server() as server:
        server.routes["/atom"] = Route(body, content_type="text/xml; charset=us-ascii")
        result = read_sources([server.url("/atom")])
    assert result.items[0].title.startswith("Haïti : des milliers")
    assert result.warnings == [
        f"feed {server.url('/atom')}: document declared as us-ascii, but parsed as utf-8"
    ]


def test_a_content_language_header_gives_the_items_language() -> None:
    feed = "\n".join(newspaper_rss(1)).replace("    <language>es</language>\n", "")
    with feed_server() as server:
        server.routes["/rss"] = Route(feed.encode(), headers={"Content-Language": "es-MX"})
        [item] = read_sources([server.url("/rss")]).items
    assert item.language == "es"


# -- through the CLI ---------------------------------------------------------------------------
def test_items_send_and_check_print_a_tolerant_feeds_warning(project: Project) -> None:
    shutil.copy(FEEDS / "wordpress-es.rss", project.root / "items" / "socios.rss")
    message = "is not well-formed XML (line 2: XML or text declaration not at start of entity)"
    check = project.run("check")
    assert check.returncode == 0, check.stderr
    assert f"warning: feed {project.root / 'items' / 'socios.rss'} {message}" in check.stderr
    sent = project.run("send", "--json")
    assert sent.returncode == 0
    picked = json.loads(sent.stdout)["picked_up"]
    assert picked["problems"] == [] and any(message in w for w in picked["warnings"])
    assert f"warning: feed {project.root / 'items' / 'socios.rss'} {message}" in sent.stderr
    items = json.loads(project.run("items", "--json", check=True).stdout)
    socios = [i for i in items if i["source"].endswith("socios.rss")]
    assert len(socios) == 3 and {i["language"] for i in socios} == {"es"}
