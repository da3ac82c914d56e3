"""axe-core in Chromium on rendered digests: no serious or critical accessibility violation.

axe-core 4 comes at test time from the `axe-playwright-python` wheel on PyPI (MIT; it ships
Deque's axe.min.js, MPL 2.0), and runs in Debian's Chromium through Playwright. A digest is an
email, not a web page, so the page-level rules about a page's landmarks are left out:
- `region`, `landmark-one-main`: mail clients show a message inside their own page, whose
  landmarks hold it; an email has no <main> or <nav> of its own;
- `page-has-heading-one` is kept (the list's name is the <h1>), `document-title` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

from digest.compose.render import Personal, Renderer
from digest.models import Subscriber
from digest.sources.listing import read_listing

from .conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, SEED
from .data.long_feeds import write_long_feeds
from .test_render import first_digest, tagged

sync_api = pytest.importorskip("playwright.sync_api")
axe_package = pytest.importorskip("axe_playwright_python")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")

NOT_FOR_EMAIL = ["region", "landmark-one-main"]  # see the module's docstring


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def axe_violations(page: Any, html: str, dark: bool = False) -> list[dict[str, Any]]:
    page.emulate_media(color_scheme="dark" if dark else "light")
    page.set_content(html)
    page.add_script_tag(content=resources.files(axe_package).joinpath("axe.min.js").read_text())
    result = page.evaluate(
        "rules => axe.run(document, {rules: Object.fromEntries(rules.map(r => [r, {enabled: false}]))})",
        NOT_FOR_EMAIL,
    )
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def sample_html(subscriber: Subscriber) -> str:
    digest = first_digest(subscriber, tagged(read_listing(str(SEED))))
    renderer = Renderer(ROOT / "templates", web_pages=True)
    links = {"preferences_url": "https://news.test/p?token=P", "view_url": "https://news.test/v"}
    return renderer.render(digest, Personal.of(subscriber, "https://news.test/u", **links)).html


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_a_sample_digest_has_no_serious_or_critical_violations(page: Any, dark: bool) -> None:
    html = sample_html(Subscriber("ana@example.org", name="Ana Pérez", group_by="topic"))
    violations = axe_violations(page, html, dark)
    assert violations == [], [(v["id"], v["nodes"][0]["html"]) for v in violations]


def test_a_long_digest_with_excerpts_and_the_more_link_passes_too(page: Any, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from digest.sources.feed import parse_feed
    from digest.taxonomy import load_taxonomy, tag

    taxonomy = load_taxonomy(None)
    items = [
        tag(item, taxonomy)
        for path in write_long_feeds(tmp_path)
        for item in parse_feed(path.read_bytes(), str(path)).items
    ]
    reader = Subscriber("reader@example.org", name="Reader")
    digest = first_digest(reader, tagged([t.item for t in items]))
    renderer = Renderer(ROOT / "templates", web_pages=True)
    links = {"preferences_url": "https://news.test/p", "more_url": "https://news.test/m"}
    html = renderer.render(digest, Personal.of(reader, "https://news.test/u", **links)).html
    assert "Read the full story" in html
    violations = axe_violations(page, html)
    assert violations == [], [(v["id"], v["nodes"][0]["html"]) for v in violations]
