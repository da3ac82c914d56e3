"""Compiling a digest a section at a time gives exactly what compiling it whole gives."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta

import pytest

from digest.compose.mjml_fragments import FragmentCompiler, compile_whole, split_body
from digest.compose.render import Renderer
from digest.models import Item, Subscriber, TaggedItem
from digest.selection import build_digest
from digest.sources.listing import read_listing
from digest.taxonomy import load_taxonomy, tag

from .conftest import ROOT, SEED

TAXONOMY = load_taxonomy()
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def digests() -> list:
    items = [
        TaggedItem(t.item, t.regions, t.topics, t.matches, NOW)
        for t in (tag(i, TAXONOMY) for i in read_listing(str(SEED)))
    ] + [
        TaggedItem(
            Item(
                id="hostile",
                title='<b>Bold</b> & "quoted" Haiti',
                date=date(2026, 11, 20),
                summary="Ünïcödé — Port-au-Prince",
                link="https://example.org/h?a=1&b=2",
            ),
            ("Caribbean",),
            ("Health",),
            {},
            NOW,
        )
    ]
    subscribers = [
        Subscriber("a@example.org", name="Ana"),
        Subscriber("b@example.org", regions=("Caribbean",), group_by="topic"),
        Subscriber(
            "c@example.org",
            regions=("Central America", "North America"),
            topics=("Labour migration", "Children and youth"),
        ),
        Subscriber("d@example.org", name="Dee", regions=("Caribbean", "South America")),
    ]
    result = []
    for s in subscribers:
        digest = build_digest(
            s, items, set(), NOW - timedelta(days=14), NOW.date(), TAXONOMY.regions, TAXONOMY.topics
        )
        assert digest is not None
        result.append(digest)
    return result


def test_assembled_html_is_byte_identical_to_a_whole_compile() -> None:
    renderer = Renderer(ROOT / "templates")
    compiler = FragmentCompiler()
    compiler.trusted = True  # skip the run-time comparison: compare everything here
    children_seen = 0
    for digest in digests():
        source = renderer._call(
            "mjml", renderer._context(digest, digest.sections, len(digest.items))
        )
        pieces = compiler.compile(source)
        preamble, children, postamble = split_body(source)
        children_seen += len(children)
        assert "".join(pieces) == compile_whole(preamble + "".join(children) + postamble)
        # The digest's title (twice: <title> and the article's label) and preview are pieces
        # of their own between pieces of the frame shared by every digest.
        context = renderer._context(digest, digest.sections, len(digest.items))
        assert pieces.count(context["subject"]) == 2
        preheader = html.escape(context["preheader"]) + context["preheader_padding"]
        assert pieces.count(preheader) == 1
    # Sections met before (greeting, footer, recurring groups) were not compiled again, and
    # the frame was compiled once for all four digests.
    assert len(compiler.fragments) < children_seen
    assert compiler.compiles == len(compiler.fragments) + 1


@pytest.mark.parametrize(
    "title",
    ["Plain &amp; &lt;escaped&gt; &#34;text&#34; é", "  spaced  ", "", "a DIGESTPREVIEWSLOT"],
    ids=["entities", "spaces", "empty", "a-slot-name"],
)
def test_titles_and_previews_go_into_the_frame_as_mrml_would_put_them(title: str) -> None:
    compiler = FragmentCompiler()
    compiler.trusted = True
    for preview in ("first preview", title):
        source = (
            f"<mjml><mj-head><mj-title>{title}</mj-title><mj-preview>{preview}</mj-preview>"
            "</mj-head><mj-body><mj-section><mj-column><mj-text>one</mj-text></mj-column>"
            "</mj-section><mj-section><mj-column><mj-text>two</mj-text></mj-column>"
            "</mj-section></mj-body></mjml>"
        )
        assert "".join(compiler.compile(source)) == compile_whole(source)


def test_the_run_time_check_trusts_after_three_matches() -> None:
    renderer = Renderer(ROOT / "templates")
    for digest in digests():
        renderer.render_shared(digest)
    assert renderer.compiler.trusted is True and renderer.compiler.compared == 3


def test_a_template_the_shortcut_gets_wrong_falls_back_to_whole_compiles() -> None:
    compiler = FragmentCompiler()
    # Two sections with different column layouts: the second changes the head's CSS.
    source = (
        "<mjml><mj-body><mj-section><mj-column><mj-text>one</mj-text></mj-column></mj-section>"
        '<mj-section><mj-column width="30%"><mj-text>a</mj-text></mj-column>'
        '<mj-column width="70%"><mj-text>b</mj-text></mj-column></mj-section></mj-body></mjml>'
    )
    pieces = compiler.compile(source)
    assert len(pieces) == 1  # compiled whole
    assert pieces[0] == compile_whole(source)


@pytest.mark.parametrize(
    "source",
    [
        "<mjml><mj-body>loose text<mj-section></mj-section></mj-body></mjml>",
        "<mjml><mj-body><mj-section><mj-column></mj-column></mj-body></mjml>",
        "<mjml></mjml>",
    ],
)
def test_bodies_it_cannot_split_are_compiled_whole(source: str) -> None:
    assert split_body(source) is None
