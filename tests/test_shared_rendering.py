"""Renderings shared across digests and languages give exactly the bytes of renderings made
alone: readers in en, es and fr with the same preferences, the real templates, real
mjml-python. The shared path is one Renderer for every digest (its story blocks, fragments,
wording and sizes remembered); the unshared path a fresh Renderer per digest, with Jinja2's
own gettext, story blocks rendered in place, and every document also compiled whole."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage

import jinja2
import pytest

from digest.compose import build_message
from digest.compose.render import (
    TEMPLATE_FILES,
    Personal,
    Renderer,
    SharedRendering,
    html_values_for,
    text_values_for,
)
from digest.models import Digest, Item, Subscriber, TaggedItem
from digest.selection import build_digest
from digest.sources.listing import read_listing
from digest.taxonomy import load_taxonomy, tag

from .conftest import DATA, ROOT, SEED

TAXONOMY = load_taxonomy()
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LANGUAGES = ("en", "es", "fr")
ALL_NEWS = ("en", "es", "fr")
SENDER = Address("Regional Migration Digest", "digest", "example.org")


def _items() -> list[TaggedItem]:
    """The seed listing (English), the Spanish and French test listings, and a story whose
    title and summary hold markup and non-ASCII text."""
    listed = [
        *read_listing(str(SEED)),
        *read_listing(str(DATA / "listings" / "noticias-es.txt")),
        *read_listing(str(DATA / "listings" / "actualites-fr.txt")),
    ]
    tagged = [tag(i, TAXONOMY) for i in listed]
    hostile = Item(
        id="hostile",
        title='<b>Bold</b> & "quoted" Haïti — l’été',
        date=date(2026, 11, 20),
        summary="Ünïcödé — Port-au-Prince & <i>more</i>",
        link="https://example.org/h?a=1&b=2",
    )
    tagged.append(TaggedItem(hostile, ("Caribbean",), ("Health",)))
    return [TaggedItem(t.item, t.regions, t.topics, t.matches, NOW) for t in tagged]


ITEMS = _items()
PREFERENCES = [  # each read in every language, with and without a name
    {},
    {"regions": ("Caribbean",), "group_by": "topic"},
    {"regions": ("Central America", "North America"), "topics": ("Labour migration",)},
    {"regions": ("Caribbean", "South America"), "frequency": "daily"},
]


def _digests(max_items: int | None = None) -> list[Digest]:
    result = []
    for number, preferences in enumerate(PREFERENCES):
        for language in LANGUAGES:
            for name in ("Ana Núñez", ""):
                subscriber = Subscriber(
                    f"reader{number}.{language}.{len(name)}@example.org",
                    name=name,
                    language=language,
                    item_languages=ALL_NEWS,
                    **preferences,  # type: ignore[arg-type]
                )
                digest = build_digest(
                    subscriber, ITEMS, set(), NOW - timedelta(days=30), NOW.date(),
                    TAXONOMY.regions, TAXONOMY.topics, max_items=max_items,
                )  # fmt: skip
                assert digest is not None
                result.append(digest)
    return result


def _renderer(keep_sources: bool) -> Renderer:
    return Renderer(ROOT / "templates", names=TAXONOMY.names, keep_sources=keep_sources)


@jinja2.pass_context
def _in_place(context: object, *views: object, caller: jinja2.runtime.Macro) -> str:
    return caller()  # type: ignore[no-any-return]


def _unshared(digest: Digest) -> tuple[SharedRendering, int]:
    """The digest rendered by a Renderer of its own, sharing nothing."""
    renderer = _renderer(keep_sources=True)
    for code, words in renderer.localisers.items():
        env = renderer.env(code)
        env.install_gettext_translations(words.strings, newstyle=True)  # type: ignore[attr-defined]
        env.globals["_"] = env.globals["gettext"]  # what Jinja2's own `_` resolves to
        env.globals["cached"] = _in_place
    rendering = renderer.render_shared(digest)
    # A new compiler compiles its first documents whole too: the pieces made up the same.
    assert renderer.compiler.compared == 1 and renderer.compiler.trusted is None
    return rendering, renderer.compiler.compiles


def _message(digest: Digest, rendering: SharedRendering) -> bytes:
    subscriber = digest.subscriber
    words = _renderer(keep_sources=False).localiser_of(subscriber)
    personal = Personal.of(subscriber, f"https://example.org/u/{subscriber.email}", words)
    return build_message(
        subject=rendering.subject,
        body=rendering.body,
        text_values=text_values_for(personal),
        html_values=html_values_for(personal),
        to_name=subscriber.name,
        to_email=subscriber.email,
        sender=SENDER,
        message_id=f"<{subscriber.email}@example.org>",
        unsubscribe_url=f"https://example.org/u/{subscriber.email}",
        list_id="digest.example.org",
        list_name="Regional Migration Digest",
        now=NOW,
        language=words.code,
    )


@pytest.mark.parametrize("max_items", [None, 3], ids=["whole", "more-next-time"])
def test_shared_renderings_are_byte_for_byte_the_unshared_ones(max_items: int | None) -> None:
    digests = _digests(max_items)
    sending = _renderer(keep_sources=False)  # as a send renders: one Renderer for the run
    previews = _renderer(keep_sources=True)
    compiled_alone = 0  # calls into MRML
    # Twice over, the second time in reverse: renderings then come from the caches too.
    for digest in [*digests, *reversed(digests)]:
        expected, compiles = _unshared(digest)
        compiled_alone += compiles
        shared, previewed = sending.render_shared(digest), previews.render_shared(digest)
        assert _message(digest, shared) == _message(digest, expected)
        assert (previewed.subject, previewed.mjml, previewed.html, previewed.text) == (
            expected.subject,
            expected.mjml,
            expected.html,
            expected.text,
        )
        assert shared.shown_ids == expected.shown_ids
    # Languages differ, and the sections were shared: a fraction of the calls into MRML.
    sent = [_message(d, sending.render_shared(d)) for d in digests]
    assert len(set(sent)) == len(sent)
    parsed = [message_from_bytes(m, policy=policy.default) for m in sent[:6]]
    bodies = [_html(m) for m in parsed]
    assert 'lang="en"' in bodies[0] and 'lang="es"' in bodies[2] and 'lang="fr"' in bodies[4]
    assert "24 de noviembre de 2026" in bodies[2] and "24 novembre 2026" in bodies[4]
    assert sending.compiler.compiles * 4 < compiled_alone
    # Each template compiled once for the three languages' environments.
    assert len(sending._envs) == 3 and len(sending._code.codes) == len(TEMPLATE_FILES)


def _html(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()  # type: ignore[union-attr]
