"""Digests in the reader's language, end to end: Spanish and French news listings (tests/data/
listings, written for these tests) through tagging, selection and rendering to a real SMTP
server (aiosmtpd), the messages parsed back; and the bad input around languages."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from digest.compose.render import Renderer
from digest.models import Subscriber
from digest.selection import build_digest, preference_key
from digest.sources.listing import read_listing
from digest.taxonomy import load_taxonomy, tag

from .conftest import DATA, ROOT, Project, SmtpServer

SECRET = "i18n-tests-secret"
ENGLISH_SEED_TITLE = "IOM and the Organization of Eastern Caribbean States partner"
SPANISH_TITLE = "Honduras y Guatemala coordinan la atención a personas migrantes retornadas"
FRENCH_TITLE = "Haïti : le retour des familles déplacées commence à Port-au-Prince"


def _with_listings(project: Project) -> None:
    """The seed items (English), plus a Spanish and a French listing, each source saying its
    language."""
    for code, name in (("es", "noticias-es.txt"), ("fr", "actualites-fr.txt")):
        folder = project.root / code
        folder.mkdir()
        shutil.copy(DATA / "listings" / name, folder / name)
    project.settings(
        sources=["items", {"path": "es", "language": "es"}, {"path": "fr", "language": "fr"}]
    )


def _parts(message: EmailMessage) -> tuple[str, str]:
    """The text part (lines unwrapped) and the HTML part."""
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return " ".join(text.split()), html


def test_spanish_and_french_readers_get_their_language_top_to_bottom(
    project: Project, smtp_server: SmtpServer
) -> None:
    _with_listings(project)
    project.subscribers(
        [
            {"email": "ana@example.org", "name": "Ana", "language": "es"},
            {"email": "jean@example.org", "language": "fr", "group_by": "topic"},
            {"email": "bob@example.org"},
            {"email": "mix@example.org", "language": "es", "item_languages": ["es", "en"]},
        ]
    )
    project.settings(max_items=5)
    project.use_smtp(smtp_server)
    project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})

    ana = smtp_server.handler.messages_for("ana@example.org")[-1]
    text, html = _parts(ana)
    assert ana["Subject"].startswith("Su boletín de noticias sobre migración: 3 noticias (")
    assert ana["Content-Language"] == "es"
    assert re.search(r'<html lang="es"', html)
    assert "Hola, Ana:" in text and "Hola, Ana:" in html
    assert "CENTROAMÉRICA" in text and "Centroamérica" in html  # the region's name in Spanish
    assert "24 de noviembre de 2026" in text and "24 de noviembre de 2026" in html
    assert "Estas son las 3 noticias reunidas para usted" in text
    assert "Darse de baja" in html and "Gestionar preferencias" in html
    assert "Regiones: todas las regiones" in text
    assert SPANISH_TITLE in text and FRENCH_TITLE not in text
    assert ENGLISH_SEED_TITLE not in text  # English news only for those who ask for it
    assert "Hello" not in text and "Unsubscribe" not in html.replace("List-Unsubscribe", "")

    jean = smtp_server.handler.messages_for("jean@example.org")[-1]
    text, html = _parts(jean)
    assert jean["Subject"].startswith("Votre bulletin sur les migrations : 3 articles (")
    assert re.search(r'<html lang="fr"', html)
    assert "Bonjour," in text
    assert "RETOUR ET RÉINTÉGRATION" in text  # grouped by topic: topics' names in French
    assert "24 novembre 2026" in text and "Se désabonner" in html
    assert FRENCH_TITLE in text and SPANISH_TITLE not in text

    bob = smtp_server.handler.messages_for("bob@example.org")[-1]
    text, html = _parts(bob)
    assert bob["Subject"].startswith("Your migration news digest:")
    assert '<html lang="en"' in html and SPANISH_TITLE not in text and FRENCH_TITLE not in text

    mix = smtp_server.handler.messages_for("mix@example.org")[-1]
    text, _ = _parts(mix)
    assert SPANISH_TITLE in text and ENGLISH_SEED_TITLE in text and FRENCH_TITLE not in text
    # Past max_items: "the 5 most recent of 13", and the "N more" line, in Spanish.
    assert "Estas son las 5 más recientes de las 13 noticias" in text
    assert "8 noticias más no cupieron en este correo" in text


def test_an_unknown_language_names_the_file_line_and_the_supported_ones(
    project: Project,
) -> None:
    project.subscribers(
        [{"email": "ana@example.org"}, {"email": "hans@example.org", "language": "de"}]
    )
    result = project.run("send")
    assert result.returncode == 2
    said = result.stdout + result.stderr
    assert re.search(r"subscribers\.yaml:\d+", said)
    assert "'de'" in said and "en, es, fr" in said
    assert not project.maildir_messages()

    project.subscribers([{"email": "ana@example.org", "item_languages": ["es", "klingon"]}])
    result = project.run("send")
    assert result.returncode == 2 and "'klingon'" in result.stdout + result.stderr


def test_the_default_language_setting_is_every_unset_readers(project: Project) -> None:
    _with_listings(project)
    project.settings(default_language="fr")
    project.subscribers([{"email": "jean@example.org"}])
    project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
    [message] = project.maildir_messages()
    assert message["Subject"].startswith("Votre bulletin")
    project.settings(default_language="de")
    result = project.run("send")
    assert result.returncode == 2 and "default_language" in result.stdout + result.stderr


def _staff_catalog(project: Project, text: str) -> Path:
    path = project.root / "templates" / "locale" / "es" / "LC_MESSAGES" / "digest.po"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_broken_catalog_names_its_file_and_line_and_nothing_is_sent(project: Project) -> None:
    path = _staff_catalog(
        project,
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Hello,"\nmsgstr "Buenas:\n',
    )
    project.subscribers([{"email": "ana@example.org", "language": "es"}])
    result = project.run("send")
    assert result.returncode == 2
    assert f"{path}:6" in result.stdout + result.stderr
    assert not project.maildir_messages()


def test_a_staff_string_without_translation_shows_in_english_and_check_warns(
    project: Project,
) -> None:
    _with_listings(project)
    template = project.root / "templates" / "digest.txt.j2"
    template.write_text(
        template.read_text() + '\n{{ _("Sent from the regional office.") }}\n', encoding="utf-8"
    )
    _staff_catalog(
        project,
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Hello,"\nmsgstr "¡Buenas!"\n',
    )
    project.subscribers([{"email": "ana@example.org", "language": "es"}])
    checked = project.run("check")
    said = checked.stdout + checked.stderr
    assert "Sent from the regional office." in said and "no translation" in said
    project.run("send", check=True, env={"DIGEST_TOKEN_SECRET": SECRET})
    [message] = project.maildir_messages()
    text, _ = _parts(message)
    assert "¡Buenas!" in text  # the staff's catalog comes first
    assert "Sent from the regional office." in text  # no translation: English
    assert "Darse de baja" in text  # the project's catalog still below the staff's


def test_readers_of_one_language_share_a_rendering_and_languages_never_do() -> None:
    taxonomy = load_taxonomy()
    listing = read_listing(str(DATA / "listings" / "noticias-es.txt"))
    items = [tag(i, taxonomy) for i in listing]
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    renderer = Renderer(ROOT / "templates", names=taxonomy.names)

    def shared(email: str, language: str | None) -> object:
        subscriber = Subscriber(email, name="X", language=language)
        digest = build_digest(
            subscriber, items, set(), now, now.date(), taxonomy.regions, taxonomy.topics,
            only_ids=[t.id for t in items],
        )  # fmt: skip
        assert digest is not None
        return renderer.render_shared(digest)

    first, second = shared("a@example.org", "es"), shared("b@example.org", "es")
    assert first is second  # one rendering for both
    french = shared("c@example.org", "fr")
    assert french is not first and 'lang="fr"' in french.html  # type: ignore[attr-defined]
    assert shared("d@example.org", None) is not first  # the default language: English
    keys = {
        preference_key(Subscriber("e@example.org", language=code)) for code in ("es", "fr", None)
    }
    assert len(keys) == 3
