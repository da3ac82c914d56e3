"""The preview pages in a real headless Chromium (Debian's `chromium`), driven by Playwright,
against `digest preview --serve` running as a real subprocess.

Screenshots land in the test's tmp_path only (pytest keeps the last runs' folders under its
base temp directory, where a person can look at them); nothing is written outside it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

from digest.send import load_inputs, open_previews
from digest.settings import load_settings

from .conftest import CHROMIUM, CHROMIUM_ARGS, Project

WAIT_MS = 60_000  # an upper bound for slow machines, never a measured duration

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (.ci/run installs it: "
    "apt-get install chromium)",
)


@pytest.fixture
def served(project: Project) -> Iterator[str]:
    """`digest preview --serve --port 0` in the project; yields the address it printed."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digest",
            "preview",
            "--serve",
            "--port",
            "0",
            "--config",
            str(project.config),
        ],
        cwd=project.root,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.fullmatch(r"Preview at (http://127\.0\.0\.1:\d+/)\n", line)
        if not found:
            process.kill()
            pytest.fail(f"no address printed: {line!r}\n{process.communicate()[1]}")
        yield found.group(1)
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_index_and_digest_page_in_chromium(
    project: Project, served: str, page: Page, tmp_path: Path
) -> None:
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    settings = load_settings(project.config)
    with open_previews(settings, load_inputs(settings)) as previews:
        results = {r.subscriber.email: r for r in previews.results()}

    # The index: every subscriber, and the search box filters them as one types.
    page.goto(served, wait_until="load")
    rows = page.locator("#subscribers tbody tr[data-search]")
    expect(rows).to_have_count(len(results))
    shot = tmp_path / "preview-index.png"
    page.screenshot(path=shot, full_page=True)
    page.fill("#search", "caribbean diaspora")
    expect(page.locator("#subscribers tbody tr[data-search]:visible")).to_have_count(1)
    expect(page.locator("#shown-count")).to_have_text("1")
    page.fill("#search", "")
    expect(page.locator("#subscribers tbody tr[data-search]:visible")).to_have_count(len(results))

    # One subscriber's digest: the frames hold the items, at 640 and 375 px.
    address = "marlon.james@example.org"
    prepared = results[address].message
    assert prepared is not None
    page.click(f"a[href='/s/{address}']")
    page.wait_for_load_state("load")
    expect(page.locator("h1")).to_have_text(prepared.rendered.subject)
    titles = [t.item.title for t in prepared.digest.items[: prepared.rendered.shown]]
    assert titles
    widths = {}
    for name in ("desktop", "phone"):
        body = page.frame_locator(f"#frame-{name}").locator("body")
        for title in titles:
            expect(body).to_contain_text(title, timeout=WAIT_MS)
        widths[name] = body.evaluate("b => b.ownerDocument.documentElement.clientWidth")
    # clientWidth leaves out a vertical scrollbar, if the frame shows one
    assert widths["desktop"] >= 600
    assert 340 <= widths["phone"] <= 375
    assert page.locator("#frame-desktop").get_attribute("sandbox") == (
        "allow-popups allow-popups-to-escape-sandbox"
    )
    for name in ("page", "desktop", "phone"):
        shot = tmp_path / f"preview-{name}.png"
        if name == "page":
            page.screenshot(path=shot, full_page=True)
        else:
            page.locator(f"#frame-{name}").screenshot(path=shot)

    # Switching views: the phone alone, then both again.
    page.click("button[data-view=phone]")
    expect(page.locator("figure.desktop")).to_be_hidden()
    expect(page.locator("figure.phone")).to_be_visible()
    page.click("button[data-view=both]")
    expect(page.locator("figure.desktop")).to_be_visible()

    # Editing a template reloads the open page by itself.
    (project.root / "templates" / "subject.txt.j2").write_text(
        "Edited in the browser test: {{ count }} stories\n"
    )
    expect(page.locator("h1")).to_have_text(
        re.compile("^Edited in the browser test: "), timeout=WAIT_MS
    )
    # The reloaded frames too: one still loading when the template breaks would get the error
    # page, which refuses to be framed (a console error this test would count).
    for name in ("desktop", "phone"):
        body = page.frame_locator(f"#frame-{name}").locator("body")
        expect(body).to_contain_text(titles[0], timeout=WAIT_MS)
    assert errors == []

    # A template error shows on the page with its file and line; fixing it brings it back.
    template = project.root / "templates" / "digest.mjml.j2"
    original = template.read_text()
    template.write_text(original.replace("<mj-title>{{ subject }}</mj-title>", "{% if %}", 1))
    expect(page.locator("h1")).to_have_text("Template error", timeout=WAIT_MS)
    expect(page.locator(".problem .message")).to_contain_text(f"{template.resolve()}:4:")
    shot = tmp_path / "preview-error.png"
    page.screenshot(path=shot, full_page=True)
    template.write_text(original + "\n")
    expect(page.locator("h1")).to_have_text(
        re.compile("^Edited in the browser test: "), timeout=WAIT_MS
    )
    # The only errors since: the browser reporting the 500 status of the error page itself.
    assert all("status of 500" in e for e in errors), errors

    # The screenshots, in this test's own folder.
    shots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert shots == [f"preview-{n}.png" for n in ("desktop", "error", "index", "page", "phone")]
    assert all((tmp_path / name).read_bytes().startswith(b"\x89PNG\r\n") for name in shots)


def test_a_new_french_readers_preview_in_chromium(served: str, page: Page) -> None:
    """`/preview?language=fr`: the frames show the digest a new French reader would get."""
    page.goto(served + "preview?language=fr&item_languages=fr,en&regions=Caribbean")
    expect(page.locator(".meta")).to_contain_text("Language fr, news in fr, en")
    expect(page.locator("h1")).to_contain_text("Votre bulletin sur les migrations")
    frame = page.frame_locator("#frame-desktop")
    expect(frame.locator("html")).to_have_attribute("lang", "fr", timeout=WAIT_MS)
    expect(frame.locator("body")).to_contain_text("Bonjour,")
    expect(frame.locator("body")).to_contain_text("Caraïbes")
    expect(frame.locator("body")).to_contain_text("Se désabonner")
