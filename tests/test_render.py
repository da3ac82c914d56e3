"""Rendering with the real templates and the real mjml-python: escaping, size cap, subject."""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import markupsafe
import pytest

from digest.compose.mime import build_message, stable_message_id
from digest.compose.render import (
    HTML_LIMIT,
    Personal,
    PersonalRendering,
    Renderer,
    format_period,
    html_values_for,
    text_values_for,
)
from digest.errors import TemplateError
from digest.models import Digest, Item, Subscriber, TaggedItem
from digest.selection import build_digest
from digest.settings import load_settings
from digest.sources.listing import read_listing
from digest.taxonomy import load_taxonomy, tag

from .conftest import ROOT, SEED

TAXONOMY = load_taxonomy()
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
UNSUB = "https://example.org/unsubscribe?token=abc.def"


def tagged(items: list[Item], seen: datetime = NOW) -> list[TaggedItem]:
    return [
        TaggedItem(t.item, t.regions, t.topics, t.matches, seen)
        for t in (tag(i, TAXONOMY) for i in items)
    ]


def first_digest(subscriber: Subscriber, items: list[TaggedItem]) -> Digest:
    """The digest a subscriber gets on a fresh install (nothing sent yet)."""
    digest = build_digest(
        subscriber,
        items,
        set(),
        NOW - timedelta(days=14),
        NOW.date(),
        TAXONOMY.regions,
        TAXONOMY.topics,
    )
    assert digest is not None
    return digest


def render(items: list[TaggedItem], subscriber: Subscriber, templates: Path = ROOT / "templates"):
    return Renderer(templates).render(
        first_digest(subscriber, items), Personal.of(subscriber, UNSUB)
    )


def test_seed_digest_renders_responsive_html_with_every_item() -> None:
    subscriber = Subscriber("newsroom@example.org", name="Regional newsroom")
    rendered = render(tagged(read_listing(str(SEED))), subscriber)
    assert '<mjml lang="en">' in rendered.mjml
    assert rendered.html.startswith("<!doctype html>") and 'lang="en"' in rendered.html
    assert "@media" in rendered.html  # the responsive rules MJML adds
    flat_text = " ".join(rendered.text.split())  # titles are wrapped at 72 columns
    for item in read_listing(str(SEED)):
        assert str(markupsafe.escape(item.title)) in rendered.html
        assert item.title in flat_text
    assert rendered.shown == 10
    assert f'href="{UNSUB}"' in rendered.html and ">Unsubscribe</a>" in rendered.html
    assert f"Unsubscribe: {UNSUB}" in rendered.text
    assert (
        "Hello Regional newsroom," in rendered.html and "Hello Regional newsroom," in rendered.text
    )


def test_preheader_is_the_first_titles() -> None:
    rendered = render(tagged(read_listing(str(SEED))), Subscriber("n@example.org"))
    assert "<mj-preview>Four countries discuss" in rendered.mjml
    assert "Four countries discuss the role" in rendered.html.split("<body")[1][:3000]


def test_markup_in_item_text_is_escaped_in_html_and_plain_in_text() -> None:
    hostile = Item(
        id="x",
        title='<script>alert("x")</script> Haiti & "friends"',
        date=date(2026, 11, 20),
        summary="<img src=x onerror=alert(1)> Caribbean <b>bold</b>",
        link="javascript:alert(1)",
    )
    rendered = render(tagged([hostile]), Subscriber("c@example.org", name="<b>Ana</b>"))
    assert "<script>alert" not in rendered.html and "<img src=x" not in rendered.html
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Haiti &amp; &#34;friends&#34;"
        in rendered.html
    )
    assert "&lt;b&gt;Ana&lt;/b&gt;" in rendered.html and "<b>Ana</b>" not in rendered.html
    assert "javascript:" not in rendered.html
    assert '<script>alert("x")</script> Haiti & "friends"' in rendered.text
    assert (
        "&#34;" not in rendered.text
        and "&amp;" not in rendered.text
        and "&lt;" not in rendered.text
    )


def test_large_digest_is_cut_under_the_limit_and_says_how_many_more() -> None:
    paragraph = "Migrants from Honduras and Guatemala reach the border. " * 12
    many = [
        Item(
            id=f"i{n}",
            title=f"Central America story number {n}",
            date=date(2026, 11, 1 + n % 20),
            summary=paragraph,
            link=f"https://example.org/{n}",
        )
        for n in range(200)
    ]
    rendered = render(tagged(many), Subscriber("c@example.org"))
    assert len(rendered.html.encode()) <= HTML_LIMIT
    assert 10 < rendered.shown < 200
    more = 200 - rendered.shown
    assert f"{more} more stories did not fit in this email" in rendered.html
    assert f"{more} more stories did not fit" in rendered.text
    assert len(rendered.item_ids) == rendered.shown
    assert f"Your migration news digest: {rendered.shown} stories" in rendered.subject


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        (date(2026, 11, 16), date(2026, 11, 22), "16-22 Nov 2026"),
        (date(2026, 10, 28), date(2026, 11, 3), "28 Oct-3 Nov 2026"),
        (date(2025, 12, 28), date(2026, 1, 3), "28 Dec 2025-3 Jan 2026"),
        (date(2026, 11, 28), date(2026, 11, 28), "28 Nov 2026"),
    ],
)
def test_period(start: date, end: date, text: str) -> None:
    assert format_period(start, end) == text


def test_subject_names_count_and_period() -> None:
    items = [
        TaggedItem(
            Item(id=f"{n}", title=f"Story {n}", date=date(2026, 11, 16)),
            ("Caribbean",),
            (),
            {},
            datetime(2026, 11, 16 + n % 7, tzinfo=UTC),
        )
        for n in range(7)
    ]
    rendered = render(items, Subscriber("c@example.org"))
    assert rendered.subject == "Your migration news digest: 7 stories (16-22 Nov 2026)"


def _templates_with(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", folder)
    (folder / name).write_text(text)
    return folder


def test_undefined_variable_names_template_and_line(tmp_path: Path) -> None:
    folder = _templates_with(tmp_path, "subject.txt.j2", "Digest\n{{ no_such_thing }}\n")
    with pytest.raises(TemplateError, match=r"subject\.txt\.j2:2: UndefinedError: 'no_such_thing'"):
        render(tagged(read_listing(str(SEED))), Subscriber("c@example.org"), folder)


def test_template_syntax_error_names_template_and_line(tmp_path: Path) -> None:
    folder = _templates_with(tmp_path, "digest.txt.j2", "a\nb\n{% for x in %}\n")
    with pytest.raises(TemplateError, match=r"digest\.txt\.j2:3: template syntax error"):
        Renderer(folder).check()


def test_mjml_that_does_not_compile_is_a_template_error(tmp_path: Path) -> None:
    folder = _templates_with(tmp_path, "digest.mjml.j2", "<mjml><mj-body><mj-section>")
    with pytest.raises(TemplateError, match=r"digest\.mjml\.j2: MJML does not compile"):
        render(tagged(read_listing(str(SEED))), Subscriber("c@example.org"), folder)


def test_missing_template_lists_what_is_needed(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(TemplateError, match="missing template"):
        Renderer(tmp_path / "empty")


def message(
    subscriber: Subscriber,
    unsubscribe: str = UNSUB,
    subject: str | None = None,
    items: list[TaggedItem] | None = None,
) -> tuple[bytes, PersonalRendering]:
    """The wire bytes the pipeline would send, and the personal rendering to compare with."""
    digest = first_digest(subscriber, items or tagged(read_listing(str(SEED))))
    profile = Renderer(ROOT / "templates").render_shared(digest)
    personal = Personal.of(subscriber, unsubscribe)
    data = build_message(
        subject=subject or profile.subject,
        body=profile.body,
        text_values=text_values_for(personal),
        html_values=html_values_for(personal),
        to_name=subscriber.name,
        to_email=subscriber.email,
        sender=load_settings(ROOT / "digest.yaml").sender_address,
        message_id=stable_message_id(subscriber.email, profile.shown_ids, "example.org"),
        unsubscribe_url=unsubscribe,
        list_id="digest.example.org",
        list_name="Regional Migration Digest",
        now=NOW,
    )
    return data, profile.personalise(subscriber, personal)


def test_message_parses_back_with_every_header() -> None:
    subscriber = Subscriber("jean@example.org", name="Jean-Baptiste Désir")
    data, rendered = message(subscriber)
    assert all(len(line) <= 76 for line in data.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["From"] == "Regional Migration Digest <digest@example.org>"
    assert parsed["To"] == "Jean-Baptiste Désir <jean@example.org>"
    assert parsed["To"].addresses[0].display_name == "Jean-Baptiste Désir"
    assert parsed["Subject"] == rendered.subject
    assert parsed["Message-ID"] == stable_message_id(
        subscriber.email, rendered.item_ids, "example.org"
    )
    assert parsed["List-Unsubscribe"] == f"<{UNSUB}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Id"] == "Regional Migration Digest <digest.example.org>"
    assert parsed["Date"] == "Sun, 22 Nov 2026 12:00:00 +0000"
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html_part = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain" and html_part.get_content_type() == "text/html"
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html_part.get_content().replace("\r\n", "\n") == rendered.html


@pytest.mark.parametrize(
    "name",
    ["", "Ana", "Ana Pérez " * 12, '<b>&amp; "quoted"</b>', "x" * 300, "Zoë =?utf-8?q?x?= .dot"],
)
def test_personal_fields_spliced_into_the_encoded_parts_decode_exactly(name: str) -> None:
    """The parts are encoded once per rendering; each message splices its own fields in."""
    subscriber = Subscriber("someone.with.a.long.address@example.org", name=name)
    long_link = "https://example.org/unsubscribe?token=" + "A" * 150 + "=="
    data, rendered = message(subscriber, unsubscribe=long_link)
    assert all(len(line) <= 76 for line in data.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    plain, html_part = parsed.iter_parts()
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html_part.get_content().replace("\r\n", "\n") == rendered.html
    assert long_link in rendered.text


@pytest.mark.parametrize(
    "value",
    ["", ".", "..", ".a", "Ana", "Ana ", " Ana", "a=b", "x" * 69, "x" * 70, "tab\tin", "Zoë",
     "ana@example.org", "Central America, Caribbean", "<b>&amp;</b>", "From here"],
)  # fmt: skip
def test_a_personal_field_is_encoded_as_the_general_encoder_would(value: str) -> None:
    from digest.compose.mime import _segment, encode_value

    assert encode_value(value) == _segment(value)


def _dotted_texts() -> list[str]:
    """Texts whose encoding would put a "." at the start of a line in every way it can."""
    texts = [".", "..", ". ", ".\n.\n", "." * 300, ".=.=" * 60, "line\n.starts\n..twice\n"]
    for width in range(68, 80):
        texts.append("x" * width + "." + "y" * 90)  # after a soft break
        texts.append("é" * (width // 3) + "." * 100)  # escapes next to the break
        texts.append("x" * width + "\n." + "z" * 80 + "=" * 9)  # a hard line break
        texts.append("." + "w" * (width - 1) + "=\n.")  # the escape lengthens a full line
    return texts


@pytest.mark.parametrize("text", _dotted_texts())
def test_no_encoded_line_starts_with_a_dot_and_the_text_decodes_exactly(text: str) -> None:
    import binascii

    from digest.compose.mime import _segment

    encoded = _segment(text)
    lines = encoded.split(b"\r\n")
    assert not any(line.startswith(b".") for line in lines)
    assert all(len(line) <= 76 for line in lines)
    assert binascii.a2b_qp(encoded).replace(b"\r\n", b"\n") == text.encode()


def test_a_built_message_has_no_line_that_smtp_would_have_to_dot_stuff() -> None:
    from digest.compose.mime import NoDotLines

    story = Item(
        id="dots",
        title="." * 90 + " Haiti",
        date=date(2026, 11, 20),
        summary="\n\n".join("x" * n + "." * 80 for n in range(60, 80)),
        link="https://example.org/dots",
    )
    data, rendered = message(Subscriber(".dot@example.org", name=".Dot"), items=tagged([story]))
    assert isinstance(data, NoDotLines)
    assert not data.startswith(b".") and b"\n." not in data
    plain, html_part = email.message_from_bytes(data, policy=email.policy.default).iter_parts()
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html_part.get_content().replace("\r\n", "\n") == rendered.html


@pytest.mark.parametrize("group_by", ["region", "topic"])
def test_the_text_part_encoded_block_by_block_is_the_whole_texts_encoding(group_by: str) -> None:
    from digest.compose.mime import _qp_segments, body_template
    from digest.compose.render import PLACEHOLDERS

    subscriber = Subscriber("a@example.org", name="Ana", group_by=group_by)
    rendered = Renderer(ROOT / "templates", keep_sources=True).render_shared(
        first_digest(subscriber, tagged(read_listing(str(SEED))))
    )
    assert rendered.text.count("\n\n") > 20 and "@@digest.name@@" in rendered.text

    def joined(parts: tuple[bytes | str, ...]) -> bytes:
        return b"".join(p if isinstance(p, bytes) else f"<{p}>".encode() for p in parts)

    blocks = body_template(rendered.text, (), PLACEHOLDERS).text
    assert joined(blocks) == joined(_qp_segments(rendered.text, PLACEHOLDERS))


def test_non_ascii_subject_is_encoded() -> None:
    data, _ = message(Subscriber("a@example.org"), subject="Resumen de migración: 10 noticias")
    assert b"Subject: =?utf-8?" in data
    assert email.message_from_bytes(data, policy=email.policy.default)["Subject"] == (
        "Resumen de migración: 10 noticias"
    )


def test_line_breaks_in_headers_are_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        message(Subscriber("a@example.org"), unsubscribe=UNSUB + "\r\nBcc: x@evil")


def test_message_id_is_stable_per_subscriber_and_items() -> None:
    a = stable_message_id("Ana@example.org", ["1", "2"], "example.org")
    assert a == stable_message_id("ana@example.org", ["2", "1"], "example.org")
    assert a != stable_message_id("ana@example.org", ["1", "2", "3"], "example.org")
    assert a.endswith("@example.org>")


def test_subscribers_with_the_same_digest_share_one_rendering() -> None:
    items = tagged(read_listing(str(SEED)))
    renderer = Renderer(ROOT / "templates")
    # Different preferences, same resulting digest (the Caribbean has no Health story).
    a = Subscriber("a@example.org", name="A", regions=("Caribbean",))
    b = Subscriber(
        "b@example.org",
        name="B",
        regions=("Caribbean",),
        topics=(
            "Labour migration",
            "Return and reintegration",
            "Health",
            "Diaspora",
            "Training and capacity building",
            "Migration governance",
        ),
    )
    first = renderer.render(first_digest(a, items), Personal.of(a, UNSUB))
    second = renderer.render(first_digest(b, items), Personal.of(b, UNSUB))
    assert renderer.compiled == 1
    assert "Topics: all topics" in first.text and "Topics: Labour migration, Return" in second.text
    assert "Hello A," in first.html and "Hello B," in second.html
