"""The same story in English, Spanish and French gets the same tags (issue 17): the words each
language uses for the same thing, and everyday phrases that only look like terms."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from digest.errors import TaxonomyError
from digest.models import Item
from digest.taxonomy import load_taxonomy, parse_taxonomy, tag

TAXONOMY = load_taxonomy()
TOPIC = {
    "LAB": "Labour migration",
    "SMU": "Smuggling and trafficking",
    "RET": "Return and reintegration",
    "PRO": "Migrant protection",
    "HEA": "Health",
    "GOV": "Migration governance",
    "EMD": "Emergencies and displacement",
}


def tags(language: str | None, title: str, summary: str = "") -> tuple[set[str], set[str]]:
    item = Item(id="x", title=title, summary=summary, date=date(2026, 1, 1), language=language)
    tagged = tag(item, TAXONOMY)
    return set(tagged.regions), set(tagged.topics)


@pytest.mark.parametrize(
    ("language", "text", "region"),
    [
        ("es", "Niños migrantes en albergues de EE. UU.", "North America"),
        ("es", "Jornaleros con visas de trabajo en EE.UU.", "North America"),
        ("es", "Récord de detenciones en la frontera de EEUU", "North America"),
        ("en", "Nurses leave for Britain", "Rest of the world"),
        ("es", "Enfermeras que emigran a Gran Bretaña", "Rest of the world"),
        ("fr", "Des infirmières partent pour la Grande-Bretagne", "Rest of the world"),
        ("en", "Rising seas force Guna islanders to move", "Central America"),
    ],
)
def test_place_names_every_language_writes(language: str, text: str, region: str) -> None:
    assert tags(language, text)[0] == {region}


@pytest.mark.parametrize(
    ("language", "text", "topic"),
    [
        ("en", "Canada raises wages under the Seasonal Agricultural Worker Program", "LAB"),
        ("es", "Los jornaleros con visas H-2A pagaron cuotas ilegales", "LAB"),
        ("fr", "Les ouvriers agricoles avec des visas H-2A ont payé des frais", "LAB"),
        ("es", "Condenan en Atlanta a una red de trata", "SMU"),
        ("fr", "Condamnation d'un réseau de traite à Atlanta", "SMU"),
        ("fr", "Un vol d'expulsion atterrit au Cap-Haïtien", "RET"),
        ("fr", "Les migrants ont été renvoyés à La Havane", "RET"),
        ("es", "Estados Unidos devolvió a 300 balseros", "RET"),
        ("en", "Hurricane displaces 60,000 people in Honduras", "EMD"),
        ("es", "La violencia desplaza a 30.000 personas en Puerto Príncipe", "EMD"),
        ("en", "Migrant children lose legal help", "PRO"),
        ("es", "Niños migrantes pierden asistencia legal", "PRO"),
        ("fr", "Les enfants migrants privés d'aide juridique", "PRO"),
        ("fr", "Des migrants haïtiens expulsés ; les associations de défense des droits", "PRO"),
        ("en", "Free clinics for migrants", "HEA"),
        ("es", "Clínicas gratuitas para migrantes", "HEA"),
        ("fr", "Des cliniques gratuites pour les migrants", "HEA"),
        ("en", "Asylum seekers at the border under the safe third country agreement", "GOV"),
        ("es", "Solicitantes de asilo y el acuerdo de tercer país seguro", "GOV"),
        ("fr", "Des demandeurs d'asile et l'Entente sur les tiers pays sûrs", "GOV"),
        ("es", "La Oficina de Aduanas y Protección Fronteriza de Estados Unidos", "GOV"),
    ],
)
def test_the_words_each_language_uses(language: str, text: str, topic: str) -> None:
    assert TOPIC[topic] in tags(language, text)[1]


def test_doctors_and_nurses_abroad_are_not_health() -> None:
    """The office files Cuban medical missions and nurses recruited abroad as labour migration."""
    assert "Health" not in tags("fr", "Les médecins cubains envoyés à l'étranger")[1]
    assert "Health" not in tags("es", "Médicos y enfermeros venezolanos migrantes en Colombia")[1]


def test_a_term_inside_an_everyday_phrase_counts_for_nothing() -> None:
    displaced = "Emergencies and displacement"
    assert displaced in tags("es", "Las pandillas desplazan a 5.000 migrantes")[1]
    assert displaced not in tags("es", "Los migrantes se desplazan en autobús")[1]
    training = "Training and capacity building"
    assert training not in tags("fr", "Au cours de la semaine, 300 migrants sont arrivés")[1]
    assert training in tags("fr", "Un cours pour les agents de l'immigration")[1]


def test_everyday_phrases_in_a_replacement_taxonomy(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(
        "regions:\n  Islands:\n    terms: [Jamaica]\n"
        "context:\n  terms: [migrants]\n  everyday_phrases: {en: [boat race]}\n"
        "topics:\n  Boats:\n    terms: [boat]\n",
        encoding="utf-8",
    )
    custom = load_taxonomy(path)

    def topics(language: str, text: str) -> tuple[str, ...]:
        return tag(
            Item(id="1", title=text, date=date(2026, 1, 1), language=language), custom
        ).topics

    assert topics("en", "A boat of migrants") == ("Boats",)
    assert topics("en", "The boat race") == ()
    assert topics("es", "The boat race") == ("Boats",)  # an English phrase, not a Spanish one


def test_everyday_phrases_must_be_a_list_per_language() -> None:
    with pytest.raises(TaxonomyError, match=r"t\.yaml:\d+: 'context.everyday_phrases': unknown"):
        parse_taxonomy(
            "regions:\n  A: {terms: [x]}\ncontext:\n  everyday_phrases: {de: [x]}\n", "t.yaml"
        )
