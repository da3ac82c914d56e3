"""The process-wide caches can all be seen and emptied (`digest.caches`)."""

from __future__ import annotations

from datetime import UTC, datetime

from digest import caches
from digest.compose.render import Personal, Renderer
from digest.models import Subscriber
from digest.selection import build_digest
from digest.sources.listing import read_listing
from digest.taxonomy import load_taxonomy, tag

from .conftest import ROOT, SEED


def test_rendering_fills_registered_caches_and_clear_empties_every_one() -> None:
    taxonomy = load_taxonomy()
    items = [tag(i, taxonomy) for i in read_listing(str(SEED))]
    subscriber = Subscriber("ana@example.org", name="Ana")
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    digest = build_digest(
        subscriber,
        items,
        set(),
        now,
        now.date(),
        taxonomy.regions,
        taxonomy.topics,
        only_ids=[t.id for t in items],
    )
    assert digest is not None
    rendered = Renderer(ROOT / "templates").render_shared(digest)
    rendered.personalise(subscriber, Personal.of(subscriber, "https://example.org/u"))
    assert rendered.body  # encodes the parts: the encoded pieces are kept
    filled = {name for name, size in caches.sizes().items() if size}
    assert {
        "digest.taxonomy.loaded",
        "digest.compose.views.entry",
        "digest.compose.i18n.long_date",
        "digest.compose.mime.encoded_pieces",
    } <= filled
    caches.clear()
    assert set(caches.sizes().values()) == {0}
