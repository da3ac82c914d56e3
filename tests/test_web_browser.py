"""One subscriber's visit in headless Chromium: from the unsubscribe link in a digest to the
preference centre, changing every setting, unsubscribing and coming back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHROMIUM, CHROMIUM_ARGS, Project
from .test_web import WebServer, start_server, token

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module; each test's page has a context (cookies) of its own."""
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def web(project: Project) -> Iterator[WebServer]:
    server = start_server(project)
    try:
        yield server
    finally:
        server.stop()


def _ana(project: Project) -> dict[str, Any]:
    listed = json.loads(project.run("subscribers", "--all", "--json", check=True).stdout)
    return next(e for e in listed if e["email"] == "ana@example.org")


def test_a_subscriber_changes_everything_in_the_preference_centre(
    project: Project, web: WebServer, browser: Any, tmp_path: Path
) -> None:
    expect = sync_api.expect
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(web.url("/unsubscribe", token=token("unsubscribe", "ana@example.org")))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Unsubscribe from")
    page.get_by_role("link", name="Change my preferences").click()

    expect(page.get_by_role("heading", name="Your preferences")).to_be_visible()
    central = page.get_by_role("checkbox", name="Central America")
    expect(central).to_be_checked()
    central.uncheck()
    page.get_by_role("checkbox", name="Caribbean").check()
    page.get_by_role("checkbox", name="Diaspora").check()
    page.get_by_role("radio", name="Topic").check()
    page.get_by_role("radio", name="Monthly").check()
    page.get_by_label("Timezone").select_option("America/Jamaica")
    page.get_by_label("Your name").fill("Ana P.")
    page.get_by_role("button", name="Save my preferences").click()

    expect(page.get_by_role("status")).to_contain_text("Your preferences are saved")
    expect(page.get_by_role("checkbox", name="Caribbean")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Central America")).not_to_be_checked()
    expect(page.get_by_role("radio", name="Monthly")).to_be_checked()
    expect(page.get_by_label("Timezone")).to_have_value("America/Jamaica")
    # Nothing runs off a phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 800, "height": 900})
    page.screenshot(path=str(tmp_path / "web-preferences.png"), full_page=True)

    ana = _ana(project)
    assert ana["regions"] == ["Caribbean"]
    assert "Diaspora" in ana["topics"] and "Labour migration" in ana["topics"]
    assert (ana["group_by"], ana["frequency"], ana["timezone"], ana["name"]) == (
        "topic",
        "monthly",
        "America/Jamaica",
        "Ana P.",
    )

    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("status")).to_contain_text("You are unsubscribed")
    assert _ana(project)["status"] == "unsubscribed"
    page.get_by_role("button", name="Subscribe again").click()
    expect(page.get_by_role("status")).to_contain_text("Welcome back")
    assert _ana(project)["status"] == "active"
    assert errors == []  # no CSP refusals, no script errors


def test_sign_up_form_shows_problems_next_to_the_fields(
    project: Project, web: WebServer, browser: Any, tmp_path: Path
) -> None:
    expect = sync_api.expect
    page = browser.new_page()
    page.goto(web.url("/subscribe"))
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("alert")).to_contain_text("Please check the fields")
    expect(page.locator("#email-error")).to_have_text(
        "Enter an email address like name@example.org."
    )
    expect(page.get_by_label("Email address")).to_have_value("not an address")
    page.screenshot(path=str(tmp_path / "web-subscribe-error.png"), full_page=True)
    # The expired-link page, for the look.
    page.goto(web.url("/confirm", token=token("confirm", "x@example.org", time.time() - 5)))
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")
    page.screenshot(path=str(tmp_path / "web-expired.png"))


def test_a_french_browser_gets_french_pages_and_can_switch_to_spanish(
    project: Project, web: WebServer, browser: Any, tmp_path: Path
) -> None:
    expect = sync_api.expect
    context = browser.new_context(locale="fr-FR")  # Chromium sends Accept-Language: fr-FR
    try:
        page = context.new_page()
        page.goto(web.url("/subscribe"))
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.get_by_role("heading", level=1)).to_contain_text("S’abonner à")
        expect(page.get_by_role("checkbox", name="Amérique centrale")).to_be_visible()
        expect(page.get_by_role("combobox", name="Langue")).to_have_value("fr")
        page.get_by_role("link", name="Español").click()
        expect(page.locator("html")).to_have_attribute("lang", "es")
        page.get_by_label("Dirección de correo").fill("no es una dirección")
        page.get_by_role("button", name="Suscribirse").click()
        expect(page.get_by_role("alert")).to_contain_text("Revise los campos")
        expect(page.locator("#email-error")).to_have_text(
            "Escriba una dirección de correo como nombre@example.org."
        )
        page.screenshot(path=str(tmp_path / "web-subscribe-es.png"), full_page=True)
    finally:
        context.close()
