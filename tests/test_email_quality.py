"""What a deliverability engineer checks in a digest (issue 20): the hidden preheader, headings,
contrast, inline link colours, dark mode, the text part, List-Id and Feedback-ID, opaque links
(and the readable ones sent before), and the state that keeps what a digest was made for."""

from __future__ import annotations

import base64
import email
import email.policy
import html
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from digest.compose.mime import _list_id_header, build_message
from digest.compose.mjml_fragments import HIDDEN_PREVIEW
from digest.compose.render import (
    Personal,
    Renderer,
    html_values_for,
    intro,
    preheader,
    text_values_for,
)
from digest.models import Subscriber
from digest.settings import load_settings
from digest.sources.listing import read_listing
from digest.state import State
from digest.state.schema import LATEST, OPAQUE_LINKS_SINCE

from .conftest import ROOT, SEED, Project
from .test_render import NOW, first_digest, tagged
from .test_web import SECRET, Client, start_server

ANA = Subscriber("ana@example.org", name="Ana Pérez", regions=("Central America",))


def rendered_for(subscriber: Subscriber = ANA, web_pages: bool = True):  # type: ignore[no-untyped-def]
    digest = first_digest(subscriber, tagged(read_listing(str(SEED))))
    renderer = Renderer(ROOT / "templates", web_pages=web_pages)
    links = {
        "preferences_url": "https://news.test/preferences?token=P",
        "view_url": "https://news.test/view?token=V",
    }
    return renderer.render(digest, Personal.of(subscriber, "https://news.test/u?token=U", **links))


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


# -- the HTML --------------------------------------------------------------------------------------
def test_the_preheader_is_hidden_as_email_developers_do_and_never_low_contrast() -> None:
    page = rendered_for().html
    assert page.count(HIDDEN_PREVIEW) == 1
    assert "display:none;max-height:0" in HIDDEN_PREVIEW and "mso-hide:all" in HIDDEN_PREVIEW
    assert 'aria-hidden="true"' in HIDDEN_PREVIEW
    assert "color:#ffffff;line-height:1px" not in page  # MRML's 1px white text is gone
    hidden = page.split(HIDDEN_PREVIEW, 1)[1].split("</div>", 1)[0]
    text, padding = hidden.split("&zwnj;", 1)
    assert text.endswith("…") and len(html.unescape(text)) <= 112
    assert padding.count("&nbsp;") >= 30  # the inbox preview stops here


def test_the_preheader_is_cut_at_a_word_boundary() -> None:
    titles = ["Four countries discuss the role of their consular staff", "El Salvador and Belize"]
    short = preheader(titles[:1])
    assert short == titles[0]
    cut = preheader(titles * 3, limit=70)
    assert cut.endswith("…") and len(cut) <= 71
    assert (titles[0] + "; " + titles[1]).startswith(cut[:-1])
    assert not cut[:-1].endswith(" ")


def test_headings_mark_the_list_regions_groups_and_stories() -> None:
    page = rendered_for().html
    assert len(re.findall(r"<h1 ", page)) == 1 and "Regional Migration Digest</h1>" in page
    assert re.findall(r"<h2 [^>]*>([^<]+)</h2>", page) == ["Central America", "Across the region"]
    stories = re.findall(r"<h3 [^>]*><a href=", page) + re.findall(r"<h3 [^>]*>[^<]+</h3>", page)
    assert len(stories) >= 5
    for heading in re.findall(r"<h[123] style=\"([^\"]+)\"", page):
        assert "margin:0" in heading and "font-size:" in heading  # the look is kept inline


def test_contrast_sizes_tap_targets_and_links_that_say_where_they_go() -> None:
    page = rendered_for().html
    assert "#7b8794" not in page  # 3.66:1 on white: gone
    footer = page.split("You receive this because")[0].rsplit("<div", 2)[1]
    assert "font-size:14px" in footer
    for name in ("Manage preferences", "Unsubscribe"):
        link = re.search(rf'<a href="[^"]+" style="([^"]+)">{name}</a>', page)
        assert (
            link and "padding:10px 0" in link.group(1) and "display:inline-block" in link.group(1)
        )
    assert "Read more" not in page
    for anchor in re.findall(r"<a [^>]*>", page):  # every link's colour is on the link itself
        assert re.search(r'style="[^"]*color:#', anchor), anchor


def test_read_the_full_story_names_the_story(project: Project) -> None:
    (project.root / "items" / "long.md").write_text(
        "---\ntitle: A long report\ndate: 2020-10-20\nlink: https://example.org/r\n---\n"
        + "The report runs on for a long time. " * 60,
        encoding="utf-8",
    )
    project.subscribers([{"email": "reader@example.org"}])
    project.run("send", check=True)
    page = str(project.maildir_messages()[0].get_body(("html",)).get_content())
    assert 'aria-label="Read the full story: A long report"' in page


def test_dark_mode_is_declared_with_a_palette_that_keeps_contrast() -> None:
    page = rendered_for().html
    assert '<meta name="color-scheme" content="light dark"' in page
    assert '<meta name="supported-color-schemes" content="light dark"' in page
    dark = page.split("@media (prefers-color-scheme: dark)", 1)[1].split("</style>", 1)[0]
    assert "#17212b" in dark and "#e4e7eb" in dark and "#8cc4ff" in dark


def test_the_text_part_has_paragraphs_the_same_intro_and_a_preferences_link() -> None:
    rendered = rendered_for()
    text = rendered.text
    found = re.search(r"Here are the (\d+) stories[^.<]+\.", rendered.html)
    assert found and found.group(0) == intro(int(found.group(1)), 0, "region")
    assert found.group(0) in " ".join(text.split())
    story = text.split("* Four countries", 1)[1].split("\n* ", 1)[0]
    assert "\n\n  On September 23" in story  # a blank line before each paragraph
    assert "Manage preferences: https://news.test/preferences?token=P" in text
    assert "View this digest in your browser: https://news.test/view?token=V" in text
    assert "Unsubscribe: https://news.test/u?token=U" in text


def test_without_digest_serve_there_is_no_view_link_but_preferences_stay() -> None:
    rendered = rendered_for(web_pages=False)
    assert "View this digest" not in rendered.html and "View this digest" not in rendered.text
    assert "Manage preferences" in rendered.html


# -- headers ---------------------------------------------------------------------------------------
def headers_for(list_name: str) -> EmailMessage:
    rendered = Renderer(ROOT / "templates").render_shared(
        first_digest(ANA, tagged(read_listing(str(SEED))))
    )
    personal = Personal.of(ANA, "https://news.test/u?token=U")
    data = build_message(
        subject="S",
        body=rendered.body,
        text_values=text_values_for(personal),
        html_values=html_values_for(personal),
        to_name=ANA.name,
        to_email=ANA.email,
        sender=load_settings(ROOT / "digest.yaml").sender_address,
        message_id="<digest.0123@example.org>",
        unsubscribe_url="https://news.test/u?token=U",
        list_id="digest.example.org",
        list_name=list_name,
        now=NOW,
        feedback_id="run7:digest.example.org:digest:example.org",
    )
    return parsed(data)


@pytest.mark.parametrize(
    "name",
    [
        "Boletín de Migración Regional",
        "Boletín de Migración Regional de Centroamérica, Norteamérica y el Caribe — edición semanal",
        "Migration Digest, Inc.",
    ],
)
def test_list_id_encodes_only_the_name_in_words_of_at_most_75(name: str) -> None:
    raw = _list_id_header(name, "digest.example.org")
    assert raw.endswith(" <digest.example.org>")  # outside any encoded word
    for word in re.findall(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=", raw):
        assert len(word) <= 75
    assert all(len(line) <= 78 for line in raw.split("\r\n"))
    message = headers_for(name)
    assert message["List-Id"] == f"{name} <digest.example.org>" or (
        message["List-Id"] == f'"{name}" <digest.example.org>'
    )


def test_feedback_id_names_the_run_and_the_list() -> None:
    assert headers_for("Digest")["Feedback-ID"] == "run7:digest.example.org:digest:example.org"


# -- links -----------------------------------------------------------------------------------------
def links_of(message: EmailMessage) -> list[str]:
    body = str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    return re.findall(r"https?://\S+", body) + [message["List-Unsubscribe"].strip("<>")]


def test_no_link_shows_the_address_and_each_works_on_the_web(project: Project) -> None:
    web = start_server(project)
    try:
        result = project.run(
            "send", "--only", "ana@example.org", env={"DIGEST_TOKEN_SECRET": SECRET}
        )
        assert result.returncode == 0, result.stderr
        [message] = project.maildir_messages()
        assert message["Feedback-ID"].startswith("run1:digest.example.org:digest:")
        links = links_of(message)
        assert {urlsplit(link).path for link in links} == {"/view", "/preferences", "/unsubscribe"}
        for link in links:
            token = parse_qs(urlsplit(link).query)["token"][0]
            decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            assert b"ana" not in decoded and b"example" not in decoded
            page = Client(web).get(link)
            assert page.status == 200, (link, page.text)
        view = Client(web).get(next(link for link in links if "/view" in link))
        assert "Hello Ana Pérez," in view.text
        assert "Four countries discuss" in view.text
    finally:
        web.stop()


def test_readable_links_sent_before_keep_working_for_a_while(project: Project) -> None:
    from digest.compose.links import make_legacy_token

    project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
    legacy = make_legacy_token(SECRET.encode(), "unsubscribe", "ana@example.org")
    recently = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with sqlite3.connect(project.state) as db:  # as migration 8 notes on an upgraded state
        db.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (OPAQUE_LINKS_SINCE, recently))
    web = start_server(project)
    try:
        page = Client(web).get(web.url("/unsubscribe", token=legacy))
        assert page.status == 200 and "ana@example.org" in page.text  # within 30 days
    finally:
        web.stop()
    with sqlite3.connect(project.state) as db:
        db.execute(
            "UPDATE meta SET value = '2025-01-01T00:00:00.000000Z' WHERE key = ?",
            (OPAQUE_LINKS_SINCE,),
        )
    web = start_server(project)
    try:
        page = Client(web).get(web.url("/unsubscribe", token=legacy))
        assert page.status == 403 and "This link is too old" in page.text
    finally:
        web.stop()


# -- the state -------------------------------------------------------------------------------------
def test_an_older_state_gains_the_digests_profile_and_notes_when_links_became_opaque(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    with State(path) as state:
        run = state.start_run("manual", NOW)
        state.begin_deliveries(run, [("ana@example.org", "<digest.00@x>", ["a"])], NOW, {})
    with sqlite3.connect(path) as db:  # as version 4 left it
        db.executescript(
            "CREATE TABLE old AS SELECT id, run_id, subscriber, message_id, status, item_ids, "
            "error, attempts, created_at, updated_at, resent FROM deliveries; "
            "DROP TABLE deliveries; ALTER TABLE old RENAME TO deliveries; "
            "DELETE FROM meta; PRAGMA user_version = 4;"
        )
    with State(path) as state:
        assert state.db.execute("PRAGMA user_version").fetchone()[0] == LATEST == 9
        assert state.opaque_links_since() is not None
        [delivery] = state.deliveries()
        assert delivery.profile is None and delivery.more_ids == ()
    fresh = tmp_path / "fresh.db"
    with State(fresh) as state:
        assert state.opaque_links_since() is None  # a new state never sent readable links
