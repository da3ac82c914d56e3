"""Digests of long and many items (issue 21): excerpts, `max_items`, the rest on the web."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from digest.compose.excerpts import excerpt, word_count
from digest.models import Item, Subscriber, TaggedItem
from digest.selection import arrange, flatten
from digest.sources.feed import parse_feed
from digest.sources.html import html_to_text

from .conftest import Project
from .data.long_feeds import FIRST_LINE, article_html, rss_feed, write_long_feeds
from .test_web import SECRET, Client, start_server

EVERYTHING = [{"email": "reader@example.org", "name": "Reader"}]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def long_project(project: Project) -> Path:
    feeds = project.root / "feeds"
    write_long_feeds(feeds)
    project.settings(sources=["feeds"])
    project.subscribers(EVERYTHING)
    return feeds


# -- HTML to text --------------------------------------------------------------------------------
def test_feed_html_becomes_clean_paragraphs_without_images_scripts_or_boilerplate() -> None:
    text = html_to_text(article_html(random.Random(7), 1))
    paragraphs = text.split("\n\n")
    assert paragraphs[0].startswith(FIRST_LINE)
    assert len(paragraphs) >= 10
    for gone in ("Continue reading", "appeared first on", "photo caption", "track(", ".x{"):
        assert gone not in text
    assert "First point of the list." in paragraphs and "Second point." in paragraphs
    assert all(p == " ".join(p.split()) for p in paragraphs)  # no stray spaces or line breaks
    assert html_to_text(
        "<p>A &amp; B&nbsp;C</p><p>Read more about the plan in the report "
        "the ministry published on Monday, which runs to forty pages.</p>"
    ) == (
        "A & B C\n\nRead more about the plan in the report the ministry published on Monday, "
        "which runs to forty pages."
    )  # an article's own sentence that starts "Read more" stays


def test_a_feeds_own_summary_wins_over_its_whole_article() -> None:
    items = parse_feed(rss_feed(3, 9, datetime(2026, 11, 20, tzinfo=UTC)).encode(), "t.rss").items
    with_description, article_only = items[0], items[1]
    assert word_count(with_description.summary) < 30  # the <description>
    assert with_description.summary.count(".") == 2
    assert article_only.summary.startswith(FIRST_LINE)  # the article, made text
    assert word_count(article_only.summary) > 300


# -- excerpts ------------------------------------------------------------------------------------
LONG = "\n\n".join(
    " ".join(f"Sentence {p}.{s} has exactly seven words." for s in range(6)) for p in range(8)
)


def test_a_short_summary_is_shown_whole() -> None:
    shown = excerpt("One paragraph.\n\nAnother one, short too.", 60, has_link=True)
    assert shown.paragraphs == ("One paragraph.", "Another one, short too.") and not shown.cut


def test_a_long_article_is_cut_at_a_sentence_near_the_word_count() -> None:
    shown = excerpt(LONG, 60, has_link=True)
    assert shown.cut
    words = sum(word_count(p) for p in shown.paragraphs)
    assert 50 <= words <= 70
    assert shown.paragraphs[0] == " ".join(
        f"Sentence 0.{s} has exactly seven words." for s in range(6)
    )
    assert shown.paragraphs[-1].endswith("seven words.")  # whole sentences only


def test_a_story_without_a_link_keeps_more_and_says_when_it_was_cut() -> None:
    kept = excerpt(LONG, 60, has_link=False)
    assert 200 <= sum(word_count(p) for p in kept.paragraphs) <= 250
    assert kept.cut and kept.paragraphs[-1].endswith("…")
    whole = excerpt(LONG, 80, has_link=False)  # 336 words fit in 4 x 80
    assert not whole.cut and len(whole.paragraphs) == 8


def test_text_without_spaces_is_counted_and_cut_too() -> None:
    chinese = "。".join(["中国移民政策今年有重大变化"] * 40) + "。"
    shown = excerpt(chinese, 60, has_link=True)
    assert shown.cut and shown.paragraphs[0].endswith("。")
    assert 40 <= word_count(shown.paragraphs[0]) <= 80


# -- ordering ------------------------------------------------------------------------------------
def tagged(day: int) -> TaggedItem:
    when = datetime(2026, 11, day, 9, tzinfo=UTC)
    item = Item(id=f"i{day}", title=f"Story of the {day}th", date=when.date())
    return TaggedItem(item, ("Caribbean",), ("Health",), first_seen=when)


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_newest_first_inside_each_group_or_oldest_if_asked(order: str) -> None:
    items = [tagged(d) for d in (3, 9, 5, 7, 1)]
    reader = Subscriber(email="r@example.org", order=order)
    digest = arrange(reader, items, date(2026, 11, 10), ("Caribbean",), ("Health",), max_items=3)
    assert digest is not None
    days = [t.item.date.day for t in flatten(digest.sections)]
    assert days == ([9, 7, 5] if order == "newest" else [5, 7, 9])  # the 3 most recent
    assert [t.item.date.day for t in digest.more] == [3, 1]


def test_order_is_checked_like_every_setting(project: Project) -> None:
    project.subscribers([{"email": "a@example.org", "order": "random"}])
    result = project.run("check")
    assert result.returncode == 2
    assert "subscribers.yaml:3" in result.stderr and "'order': expected newest or oldest" in (
        result.stderr
    )


# -- the cap, with and without the web pages -----------------------------------------------------
def test_long_feeds_give_one_digest_of_max_items_and_the_rest_on_the_web(
    any_project: Project,
) -> None:
    project = any_project
    long_project(project)
    web = start_server(project)
    try:
        result = project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
        assert "1 sent" in result.stdout
        [message] = project.maildir_messages()
        html, text = html_of(message), text_of(message)
        assert len(html.encode()) < 60 * 1024
        assert len(re.findall(r"<h3 [^>]*><a href=", html)) == 25
        assert "Continue reading" not in html and "pixel.example.net" not in html
        assert html.count(">Read the full story</a>") >= 15
        more = re.search(
            r'<a href="([^"]+/more\?token=[^"]+)"[^>]*>35 more stories this week', html
        )
        assert more, "the email links to every story of the period"
        assert "35 more stories this week: http" in text
        [(item_ids, more_ids)] = project.query("SELECT item_ids, more_ids FROM deliveries")
        assert (len(json.loads(item_ids)), len(json.loads(more_ids))) == (25, 35)

        client = Client(web)
        page = client.get(more.group(1).replace("&amp;", "&"))
        assert page.status == 200
        assert "60 stories for you" in page.text
        assert len(re.findall(r"<article class=\"story\">", page.text)) == 60
        assert "Continue reading" not in page.text
        # The 35 count as sent: the next send has nothing new for the reader.
        again = project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
        assert "0 sent" in again.stdout and len(project.maildir_messages()) == 1
    finally:
        web.stop()


def test_without_digest_serve_the_rest_follows_next_time_and_check_says_so(
    project: Project,
) -> None:
    long_project(project)
    check = project.run("check")
    assert "`digest serve` is taken to be not set up" in check.stderr
    assert "max_items (25)" in check.stderr
    project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
    [first] = project.maildir_messages()
    html = html_of(first)
    assert "35 more stories did not fit in this email; they will come in your next digest." in (
        html
    )
    assert "/more?token=" not in html and "/view?token=" not in html
    project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
    second = project.maildir_messages()[1]
    assert "10 more stories did not fit" in html_of(second)


def test_preview_says_when_a_digest_hit_the_cap_and_what_was_left_out(project: Project) -> None:
    from digest.preview.snapshot import message_view
    from digest.send import load_inputs, open_previews
    from digest.settings import load_settings

    long_project(project)
    settings = load_settings(project.config)
    inputs = load_inputs(settings)
    with open_previews(settings, inputs, now=datetime(2026, 11, 23, 12, tzinfo=UTC)) as previews:
        [result] = list(previews.results())
    assert result.message is not None
    view = message_view(result.message)
    assert (view.shown, view.total, view.capped) == (25, 60, 25)
    assert len(view.left_out) == 35 and not view.on_the_web
    newest_left_out = result.message.digest.more[0].item.title
    assert view.left_out[0] == newest_left_out


def test_excerpt_words_and_max_items_are_settings(project: Project) -> None:
    long_project(project)
    project.settings(excerpt_words=20, max_items=5)
    project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
    html = html_of(project.maildir_messages()[0])
    assert len(re.findall(r"<h3 [^>]*><a href=", html)) == 5
    assert "55 more stories did not fit" in html
    project.settings(max_items=0)
    bad = project.run("check")
    assert bad.returncode == 2 and "'max_items'" in bad.stderr


def test_links_in_a_view_page_are_fresh_and_point_at_the_service(any_project: Project) -> None:
    project = any_project
    long_project(project)
    web = start_server(project)
    try:
        project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
        html = html_of(project.maildir_messages()[0])
        view = re.search(r'href="([^"]+/view\?token=[^"]+)"', html)
        assert view
        page = Client(web).get(view.group(1))
        assert page.status == 200
        assert len(re.findall(r"<h3 [^>]*><a href=", page.text)) == 25
        assert "Hello Reader," in page.text
        assert urlsplit(view.group(1)).netloc in page.text
    finally:
        web.stop()
