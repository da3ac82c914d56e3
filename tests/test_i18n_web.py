"""The pages of `digest serve` in the reader's language, fetched over HTTP: the browser's
Accept-Language for visitors, the subscriber's language on their own pages, `?lang=` over
both; the preference centre choosing the language; a Spanish sign-up's confirmation email;
the /view and /more pages of a Spanish digest."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .conftest import Project, SmtpServer
from .test_i18n_send import _with_listings
from .test_web import SECRET, Client, WebServer, start_server, subscribers, token


@pytest.fixture
def served(project: Project) -> Iterator[WebServer]:
    _with_listings(project)
    project.subscribers(
        [
            {"email": "ana@example.org", "name": "Ana", "language": "es"},
            {"email": "jean@example.org", "language": "fr"},
        ]
    )
    server = start_server(project, posts_per_minute=1000, requests_per_minute=1000)
    try:
        yield server
    finally:
        server.stop()


def _lang(text: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', text)
    assert found, text[:200]
    return found.group(1)


def test_visitors_get_their_browsers_language_and_lang_overrides_it(served: WebServer) -> None:
    client = Client(served)
    french = client.get("/subscribe", **{"Accept-Language": "fr-CA, en;q=0.5"})
    assert french.status == 200 and _lang(french.text) == "fr"
    assert french.headers["Content-Language"] == "fr"
    assert "S’abonner à Regional Migration Digest" in french.text
    assert "Amérique centrale" in french.text  # the regions' names too
    assert '<option value="fr" lang="fr" selected>Français</option>' in french.text

    spanish = client.get("/subscribe?lang=es", **{"Accept-Language": "fr"})
    assert _lang(spanish.text) == "es" and "Suscribirse a Regional Migration Digest" in spanish.text
    assert 'action="/subscribe?lang=es"' in spanish.text  # the answer stays in Spanish

    unknown = client.get("/subscribe", **{"Accept-Language": "de-DE,de;q=0.9"})
    assert _lang(unknown.text) == "en" and "Subscribe to Regional Migration Digest" in unknown.text
    assert _lang(client.get("/no-such-page", **{"Accept-Language": "es"}).text) == "es"


def test_a_subscribers_pages_are_in_their_language(served: WebServer) -> None:
    client = Client(served)
    ana = token("unsubscribe", "ana@example.org")
    page = client.get(f"/unsubscribe?token={ana}", **{"Accept-Language": "en"})
    assert page.status == 200 and _lang(page.text) == "es"
    assert "¿Darse de baja de Regional Migration Digest?" in page.text
    again = client.get(f"/unsubscribe?token={ana}&lang=fr")
    assert (
        _lang(again.text) == "fr" and "Se désabonner de Regional Migration Digest ?" in again.text
    )

    expired = client.get(f"/preferences?token={token('preferences', 'ana@example.org', 1.0)}")
    assert expired.status == 403 and _lang(expired.text) in ("en", "es")


def test_the_preference_centre_changes_the_language_and_the_news_languages(
    project: Project, served: WebServer
) -> None:
    client = Client(served)
    page = client.get(f"/preferences?token={token('preferences', 'jean@example.org')}")
    assert _lang(page.text) == "fr" and "Vos préférences" in page.text
    saved = client.submit(
        page,
        1,
        action="save",
        group_by="region",
        frequency="weekly",
        timezone="",
        language="es",
        item_languages=["es", "fr"],
    )
    assert saved.status == 303
    shown = client.get(saved.location or "")
    assert _lang(shown.text) == "es" and "Sus preferencias se guardaron" in shown.text
    listed = subscribers(project)["jean@example.org"]
    assert (listed["language"], listed["item_languages"]) == ("es", ["es", "fr"])
    assert listed["sources"]["language"] == "web"
    exported = project.run("subscribers", "export", "--out", "-", check=True).stdout
    assert "- email: jean@example.org\n  language: es\n  item_languages: [es, fr]\n" in exported

    refused = client.submit(
        client.get(f"/preferences?token={token('preferences', 'jean@example.org')}"),
        1,
        action="save",
        group_by="region",
        frequency="weekly",
        language="xx",
    )
    assert refused.status == 400 and "Elija un idioma de la lista." in refused.text


def test_a_spanish_sign_up_gets_its_confirmation_in_spanish(
    project: Project, smtp_server: SmtpServer
) -> None:
    project.use_smtp(smtp_server)
    server = start_server(project, posts_per_minute=1000, requests_per_minute=1000)
    try:
        client = Client(server)
        page = client.get("/subscribe", **{"Accept-Language": "es-MX,es;q=0.9"})
        answer = client.submit(
            page,
            email="nueva@example.org",
            group_by="region",
            frequency="weekly",
            timezone="",
            language="es",
        )
        assert answer.status == 200 and "Revise su bandeja de entrada" in answer.text
        [message] = smtp_server.handler.messages_for("nueva@example.org")
        assert message["Subject"] == "Confirme su suscripción a Regional Migration Digest"
        assert message["Content-Language"] == "es"
        body = message.get_content()
        assert "Para confirmar, abra este enlace y pulse Confirmar" in body
        assert "48 horas" in body
    finally:
        server.stop()


def test_the_view_and_more_pages_of_a_spanish_digest(project: Project) -> None:
    _with_listings(project)
    project.settings(max_items=2)
    project.subscribers([{"email": "ana@example.org", "name": "Ana", "language": "es"}])
    server = start_server(project)
    try:
        project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
        [message] = project.maildir_messages()
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        view = re.search(r'href="([^"]+/view\?token=[^"]+)"[^>]*>Ver este boletín', html)
        more = re.search(r'href="([^"]+/more\?token=[^"]+)"[^>]*>1 noticia más esta semana', html)
        assert view and more, html
        client = Client(server)
        shown = client.get(view.group(1).replace("&amp;", "&"))
        assert (
            shown.status == 200 and '<html lang="es"' in shown.text and "Hola, Ana:" in shown.text
        )
        every = client.get(more.group(1).replace("&amp;", "&"))
        assert every.status == 200 and _lang(every.text) == "es"
        assert "3 noticias para usted" in every.text
        assert "24 de noviembre de 2026" in every.text and "Centroamérica" in every.text
    finally:
        server.stop()


def test_saving_the_default_language_unchanged_keeps_it_the_default(
    project: Project, served: WebServer
) -> None:
    project.subscribers([{"email": "bob@example.org"}])
    client = Client(served)
    page = client.get(f"/preferences?token={token('preferences', 'bob@example.org')}")
    assert '<option value="en" lang="en" selected>English</option>' in page.text
    saved = client.submit(
        page, 1, action="save", group_by="topic", frequency="weekly", timezone="", language="en"
    )
    assert saved.status == 303
    listed = subscribers(project)["bob@example.org"]
    assert listed["sources"]["language"] == "default" and listed["sources"]["group_by"] == "web"
