"""How well the tagger does on labelled stories kept apart from the taxonomy's terms.

    python bench/tagging_accuracy.py            # one table per set
    python bench/tagging_accuracy.py --errors   # and every story it got wrong
    python bench/tagging_accuracy.py --json FILE

Sets: tests/data/tagging/*.yaml (English general news, Spanish and French news, a Murcia
local feed, the office's 2020 listing, Spanish and French readers' news of issue 17: the
tagger was tuned on es-readers and fr-readers, es-readers-2 and fr-readers-2 are held apart;
and parallel: the same stories written in English, Spanish and French, labelled once).
Per set (per language of a parallel set) it prints:
- places: the share of stories with clear places whose regions are exactly right (goal 90%);
- leaks: stories from elsewhere that would reach a reader of only Central America, only North
  America or only the Caribbean, because they were tagged with that region or with none
  (an untagged story goes to every reader) (goal 0);
- topic precision and recall over (story, topic) pairs;
for a parallel set, the agreement: the share of stories whose Spanish (French) version gets
exactly the regions and the topics of the English version, right or wrong (issue 17: "Spanish
and French items get the same regions and topics as English ones"); with --errors, every
story where they differ;
and, once, the taxonomy's load time and the time to tag 1,000 stories.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.models import Item, TaggedItem  # noqa: E402
from digest.taxonomy import Taxonomy, load_taxonomy, tag  # noqa: E402

SETS = ROOT / "tests" / "data" / "tagging"
REGIONS = {
    "CA": "Central America",
    "NA": "North America",
    "CB": "Caribbean",
    "SA": "South America",
    "RW": "Rest of the world",
}
TOPICS = {
    "LAB": "Labour migration",
    "CHI": "Children and youth",
    "SMU": "Smuggling and trafficking",
    "RET": "Return and reintegration",
    "PRO": "Migrant protection",
    "HEA": "Health",
    "CLI": "Climate and environment",
    "DAT": "Data and research",
    "DIA": "Diaspora",
    "TRA": "Training and capacity building",
    "COM": "Communication",
    "GOV": "Migration governance",
    "EMD": "Emergencies and displacement",
}
SINGLE_REGION_READERS = ("Central America", "North America", "Caribbean")
PARALLEL_LANGUAGES = ("en", "es", "fr")  # the first is what the others are compared with


@dataclass
class SetResult:
    name: str
    stories: int = 0
    with_places: int = 0
    places_right: int = 0
    leaks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SINGLE_REGION_READERS, 0))
    topic_tp: int = 0
    topic_fp: int = 0
    topic_fn: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def place_accuracy(self) -> float:
        return self.places_right / self.with_places if self.with_places else 1.0

    @property
    def precision(self) -> float:
        found = self.topic_tp + self.topic_fp
        return self.topic_tp / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.topic_tp + self.topic_fn
        return self.topic_tp / wanted if wanted else 1.0

    def score(self, tagged: TaggedItem, regions: set[str], topics: set[str]) -> None:
        """Count one story's tags against its labels."""
        got_regions, got_topics = set(tagged.regions), set(tagged.topics)
        self.stories += 1
        if regions:
            self.with_places += 1
            self.places_right += got_regions == regions
            for reader in SINGLE_REGION_READERS:
                if reader not in regions and (reader in got_regions or not got_regions):
                    self.leaks[reader] += 1
        self.topic_tp += len(got_topics & topics)
        self.topic_fp += len(got_topics - topics)
        self.topic_fn += len(topics - got_topics)
        if got_regions != regions or got_topics != topics:
            self.errors.append(
                f"{tagged.item.title!r}: regions {sorted(got_regions)} (want {sorted(regions)}), "
                f"topics {sorted(got_topics)} (want {sorted(topics)}); "
                f"matched {dict(tagged.matches)}; withheld {tagged.withheld}"
            )


@dataclass
class ParallelResult:
    """A parallel set: each language scored as a set of its own, and how often the other
    languages' versions of a story get exactly the English version's tags."""

    name: str
    languages: dict[str, SetResult]
    stories: int = 0
    agreeing: dict[str, int] = field(default_factory=dict)
    disagreements: dict[str, list[str]] = field(default_factory=dict)

    def agreement(self, language: str) -> float:
        return self.agreeing[language] / self.stories if self.stories else 1.0


def _labels(entry: dict) -> tuple[set[str], set[str]]:
    return {REGIONS[r] for r in entry["r"]}, {TOPICS[t] for t in entry["p"]}


def load_parallel(path: Path) -> list[tuple[dict[str, Item], set[str], set[str]]]:
    """(the story's item per language, expected regions, expected topics) for each story of
    a parallel set: `stories:` entries with r:, p: and one {t:, s:} per language."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    stories = []
    for n, entry in enumerate(data["stories"]):
        versions = {
            language: Item(
                id=f"{path.stem}-{n}-{language}",
                title=entry[language]["t"],
                summary=entry[language].get("s", ""),
                date=date(2026, 1, 1),
                language=language,
            )
            for language in PARALLEL_LANGUAGES
        }
        stories.append((versions, *_labels(entry)))
    return stories


def load_set(path: Path) -> tuple[list[tuple[Item, set[str], set[str]]], tuple[str, ...]]:
    """(item, expected regions, expected topics) for each story, and the source's defaults;
    a parallel set gives every language version as a story."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "stories" in data:
        return [
            (item, regions, topics)
            for versions, regions, topics in load_parallel(path)
            for item in versions.values()
        ], ()
    language = data.get("language")
    defaults = tuple(REGIONS[r] for r in data.get("default_regions", ()))
    if "listing" in data:
        from digest.sources.listing import read_listing

        items = read_listing(str(ROOT / data["listing"]))
        texts = [(i.title, i.summary) for i in items]
    else:
        texts = [(e["t"], e.get("s", "")) for e in data["items"]]
    stories = []
    for n, ((title, summary), entry) in enumerate(zip(texts, data["items"], strict=True)):
        item = Item(
            id=f"{path.stem}-{n}",
            title=title,
            summary=summary,
            date=date(2026, 1, 1),
            language=language,
        )
        stories.append((item, *_labels(entry)))
    return stories, defaults


def is_parallel(path: Path) -> bool:
    return "stories" in yaml.safe_load(path.read_text(encoding="utf-8"))


def evaluate(path: Path, taxonomy: Taxonomy) -> SetResult:
    stories, defaults = load_set(path)
    result = SetResult(path.stem)
    for item, regions, topics in stories:
        result.score(tag(item, taxonomy, defaults), regions, topics)
    return result


def evaluate_parallel(path: Path, taxonomy: Taxonomy) -> ParallelResult:
    base, *others = PARALLEL_LANGUAGES
    result = ParallelResult(
        path.stem,
        {language: SetResult(f"{path.stem}-{language}") for language in PARALLEL_LANGUAGES},
        agreeing=dict.fromkeys(others, 0),
        disagreements={language: [] for language in others},
    )
    for versions, regions, topics in load_parallel(path):
        result.stories += 1
        tagged = {language: tag(item, taxonomy) for language, item in versions.items()}
        for language, one in tagged.items():
            result.languages[language].score(one, regions, topics)
        for language in others:
            same = _tags(tagged[language]) == _tags(tagged[base])
            result.agreeing[language] += same
            if not same:
                result.disagreements[language].append(
                    _difference(tagged[base], tagged[language], base, language)
                )
    return result


def _tags(tagged: TaggedItem) -> tuple[set[str], set[str]]:
    return set(tagged.regions), set(tagged.topics)


def _difference(base: TaggedItem, other: TaggedItem, base_language: str, language: str) -> str:
    """What one version got that the other did not, and the words that decided it."""
    lines = [f"{other.item.title!r} ({base_language}: {base.item.title!r})"]
    for label, got, want in (
        ("regions", set(other.regions), set(base.regions)),
        ("topics", set(other.topics), set(base.topics)),
    ):
        if got != want:
            extra = {n: list(other.matches.get(n, ())) for n in sorted(got - want)}
            missing = {n: list(base.matches.get(n, ())) for n in sorted(want - got)}
            lines.append(f"{label}: {language} only {extra}, {base_language} only {missing}")
    if other.withheld:
        lines.append(f"{language} withheld {other.withheld}")
    return "; ".join(lines)


def timings(taxonomy_path: Path | None = None) -> dict[str, float]:
    """Seconds to parse the default taxonomy (a fresh parse) and to tag 1,000 stories."""
    from importlib import resources

    from digest.taxonomy import parse_taxonomy

    text = resources.files("digest").joinpath("data", "taxonomy.yaml").read_text("utf-8")
    start = time.perf_counter()
    taxonomy = parse_taxonomy(text, "taxonomy.yaml")
    load = time.perf_counter() - start
    stories = [s[0] for p in sorted(SETS.glob("*.yaml")) for s in load_set(p)[0]]
    batch = (stories * (1000 // len(stories) + 1))[:1000]
    start = time.perf_counter()
    for item in batch:
        tag(item, taxonomy)
    return {"taxonomy_parse_seconds": load, "tag_1000_seconds": time.perf_counter() - start}


def _print_row(r: SetResult, errors: bool) -> None:
    leaks = "/".join(str(n) for n in r.leaks.values())
    print(
        f"{r.name:14} {r.stories:7} {r.places_right:5}/{r.with_places:<3} "
        f"{r.place_accuracy:4.0%} {leaks:>15} {r.precision:8.0%} {r.recall:8.0%}"
    )
    if errors:
        for error in r.errors:
            print(f"    {error}")


def _print_agreement(p: ParallelResult, errors: bool) -> None:
    base = PARALLEL_LANGUAGES[0]
    for language, agreeing in p.agreeing.items():
        print(
            f"{p.name}: {language} gets the tags of {base} in {agreeing}/{p.stories} stories "
            f"({p.agreement(language):.0%})"
        )
        if errors:
            for difference in p.disagreements[language]:
                print(f"    {difference}")


def _figures(r: SetResult) -> dict:
    return {
        **asdict(r),
        "place_accuracy": r.place_accuracy,
        "topic_precision": r.precision,
        "topic_recall": r.recall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--errors", action="store_true", help="list the stories it got wrong")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    taxonomy = load_taxonomy()
    paths = sorted(SETS.glob("*.yaml"))
    parallel = [evaluate_parallel(p, taxonomy) for p in paths if is_parallel(p)]
    results = [evaluate(p, taxonomy) for p in paths if not is_parallel(p)]
    results += [r for p in parallel for r in p.languages.values()]
    print(
        f"{'set':14} {'stories':>7} {'places right':>14} {'leaks CA/NA/CB':>15} "
        f"{'topic P':>8} {'topic R':>8}"
    )
    for r in results:
        _print_row(r, args.errors)
    for p in parallel:
        _print_agreement(p, args.errors)
    times = timings()
    print(
        f"taxonomy parse: {times['taxonomy_parse_seconds']:.3f} s; "
        f"tagging 1,000 stories: {times['tag_1000_seconds']:.3f} s"
    )
    if args.json:
        agreement = {
            p.name: {"stories": p.stories, **{k: p.agreement(k) for k in p.agreeing}}
            for p in parallel
        }
        figures = {"sets": [_figures(r) for r in results], "agreement": agreement}
        args.json.write_text(json.dumps({**figures, "timings": times}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
