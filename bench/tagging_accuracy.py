"""How well the tagger does on labelled stories kept apart from the taxonomy's terms.

    python bench/tagging_accuracy.py            # one table per set
    python bench/tagging_accuracy.py --errors   # and every story it got wrong
    python bench/tagging_accuracy.py --json FILE

Sets: tests/data/tagging/*.yaml (English general news, Spanish and French news, a Murcia
local feed, the office's 2020 listing, Spanish and French readers' news of issue 17: the
tagger was tuned on es-readers and fr-readers, es-readers-2 and fr-readers-2 are held apart).
Per set it prints:
- places: the share of stories with clear places whose regions are exactly right (goal 90%);
- leaks: stories from elsewhere that would reach a reader of only Central America, only North
  America or only the Caribbean, because they were tagged with that region or with none
  (an untagged story goes to every reader) (goal 0);
- topic precision and recall over (story, topic) pairs;
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

from digest.models import Item  # noqa: E402
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


def load_set(path: Path) -> tuple[list[tuple[Item, set[str], set[str]]], tuple[str, ...]]:
    """(item, expected regions, expected topics) for each story, and the source's defaults."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
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
        stories.append((item, {REGIONS[r] for r in entry["r"]}, {TOPICS[t] for t in entry["p"]}))
    return stories, defaults


def evaluate(path: Path, taxonomy: Taxonomy) -> SetResult:
    stories, defaults = load_set(path)
    result = SetResult(path.stem, stories=len(stories))
    for item, regions, topics in stories:
        tagged = tag(item, taxonomy, defaults)
        got_regions, got_topics = set(tagged.regions), set(tagged.topics)
        if regions:
            result.with_places += 1
            result.places_right += got_regions == regions
            for reader in SINGLE_REGION_READERS:
                if reader not in regions and (reader in got_regions or not got_regions):
                    result.leaks[reader] += 1
        result.topic_tp += len(got_topics & topics)
        result.topic_fp += len(got_topics - topics)
        result.topic_fn += len(topics - got_topics)
        if got_regions != regions or got_topics != topics:
            result.errors.append(
                f"{item.title!r}: regions {sorted(got_regions)} (want {sorted(regions)}), "
                f"topics {sorted(got_topics)} (want {sorted(topics)}); "
                f"matched {dict(tagged.matches)}; withheld {tagged.withheld}"
            )
    return result


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--errors", action="store_true", help="list the stories it got wrong")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    taxonomy = load_taxonomy()
    results = [evaluate(p, taxonomy) for p in sorted(SETS.glob("*.yaml"))]
    print(
        f"{'set':14} {'stories':>7} {'places right':>14} {'leaks CA/NA/CB':>15} "
        f"{'topic P':>8} {'topic R':>8}"
    )
    for r in results:
        leaks = "/".join(str(n) for n in r.leaks.values())
        print(
            f"{r.name:14} {r.stories:7} {r.places_right:5}/{r.with_places:<3} "
            f"{r.place_accuracy:4.0%} {leaks:>15} {r.precision:8.0%} {r.recall:8.0%}"
        )
        if args.errors:
            for error in r.errors:
                print(f"    {error}")
    times = timings()
    print(
        f"taxonomy parse: {times['taxonomy_parse_seconds']:.3f} s; "
        f"tagging 1,000 stories: {times['tag_1000_seconds']:.3f} s"
    )
    if args.json:
        figures = [
            {
                **asdict(r),
                "place_accuracy": r.place_accuracy,
                "topic_precision": r.precision,
                "topic_recall": r.recall,
            }
            for r in results
        ]
        args.json.write_text(json.dumps({"sets": figures, "timings": times}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
