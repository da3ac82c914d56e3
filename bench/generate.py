"""A synthetic `digest` project for the throughput benchmark: items and subscribers at scale.

The items are written in the office's listing format (date line, title, summary paragraphs)
and name places and topic words from the real taxonomy, so the real tagger spreads them over
regions and topics. The subscribers pick one or two regions and none to three topics, with
popular choices more likely, as a real list would. The number of generated items is tuned with
the real tagger so that the average digest holds about `items_per_digest` items.

    project = build_project(Path("/tmp/p"), subscribers=1000, port=2525, connections=2)
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import shutil
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # digest is imported when items are written, from this checkout
    from digest.taxonomy import Taxonomy

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_ITEMS = ROOT / "items" / "office-news-2020.txt"
TEMPLATES = ROOT / "templates"
TOKEN_SECRET_ENV = "DIGEST_BENCH_TOKEN_SECRET"

# How likely each region and topic is, for subscribers and items alike: the office's own region
# first, and a few topics much more popular than the rest.
REGION_WEIGHTS = {
    "Central America": 35,
    "North America": 20,
    "Caribbean": 20,
    "South America": 15,
    "Rest of the world": 10,
}
TOPIC_WEIGHTS = {
    "Labour migration": 14,
    "Migrant protection": 13,
    "Children and youth": 11,
    "Smuggling and trafficking": 10,
    "Return and reintegration": 9,
    "Migration governance": 8,
    "Emergencies and displacement": 8,
    "Health": 7,
    "Climate and environment": 6,
    "Data and research": 5,
    "Diaspora": 4,
    "Training and capacity building": 3,
    "Communication": 2,
}
TOPIC_COUNT_WEIGHTS = {0: 10, 1: 30, 2: 35, 3: 25}  # 0: every topic (a newsroom, a desk)
REGION_COUNT_WEIGHTS = {1: 70, 2: 30}

FIRST_NAMES = [
    "Ana", "José", "María", "Lucía", "Jean-Baptiste", "Zoë", "François", "Renée", "Joël",
    "Sofía", "Andrés", "Camila", "Mateo", "Valentina", "Ramón", "Inés", "Marlon", "Keisha",
    "Dwayne", "Priya", "Ngozi", "Chloé", "Héctor", "Siobhán", "Daniel", "Sarah", "Kevin",
    "Gabriela", "Luis", "Fernanda", "Carlos", "Nathalie", "Emmanuel", "Aïcha", "Tomás",
]  # fmt: skip
LAST_NAMES = [
    "Pérez", "Hernández", "Martínez", "Désir", "López", "García", "Gómez", "Rodríguez",
    "James", "Campbell", "Baptiste", "Smith", "Nguyen", "Müller", "O'Brien", "Núñez", "Peña",
    "Ibáñez", "Brown", "Joseph", "Castillo", "Morales", "Thompson", "Pierre", "Álvarez",
    "Fernández", "Williams", "Jiménez", "Étienne", "Reyes",
]  # fmt: skip
TEAM_NAMES = ["Research desk", "Regional newsroom", "Oficina de prensa", "Équipe Haïti"]
DOMAINS = ["example.org", "example.com", "example.net"]
TIMEZONES = ["America/Guatemala", "America/Mexico_City", "America/Jamaica", "America/Panama"]

# Filler that names no region or topic (checked against the taxonomy when written), so an
# item's tags come from the place and topic words put in on purpose. The item count is tuned
# on the tags the real tagger finds, so a word that slips in later only shifts the mix.
TITLES = [
    "{place} hosts a meeting on {topic}",
    "Officials in {place} look at {topic}",
    "New joint plan on {topic} presented in {place}",
    "{place}: partners take stock of {topic}",
    "A week of exchange on {topic} in {place}",
    "Municipal leaders from {place} share lessons on {topic}",
    "{place} and its partners agree next steps on {topic}",
    "Forum in {place} puts {topic} on the agenda",
]
OPENINGS = [
    "On {weekday}, representatives from {place} met to share experiences on {topic}.",
    "Officials and civil society organisations in {place} gathered this week to discuss {topic}.",
    "A two-day meeting in {place} brought together {n} participants to look at {topic}.",
    "Municipal teams from {place} presented what they have done so far on {topic}.",
]
MIDDLES = [
    "The sessions brought together {n} people from government institutions, civil society "
    "and academia, who agreed on a plan for the coming months.",
    "Participants reviewed the lessons of the past year and identified the points where "
    "institutions can work more closely together.",
    "The organisers said that the results will be shared with local authorities and "
    "partner organisations before the end of the year.",
    "Speakers stressed the role of municipalities and of community leaders, and asked for "
    "clear roles for each institution taking part.",
]
CLOSINGS = [
    "The next meeting on {topic} is planned for the coming weeks in {place}.",
    "A follow-up meeting will take stock of the commitments made on {topic}.",
    "Those present in {place} agreed to meet again in three months.",
    "The group will publish a short summary of its conclusions on {topic} next month.",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


@dataclass
class Profile:
    regions: tuple[str, ...]
    topics: tuple[str, ...]
    group_by: str
    named: bool
    language: str = "en"  # en, es, fr: es and fr readers take the English news too


@dataclass
class Project:
    root: Path
    config: Path
    subscribers: int
    profiles: int  # distinct (regions, topics, group_by, named, language): renderings shared
    items_generated: int
    items_total: int
    expected_items_per_digest: float


def _weighted(rng: random.Random, weights: dict[str, int], k: int) -> tuple[str, ...]:
    """`k` distinct keys drawn by weight, in the taxonomy's order."""
    keys, cumulative = _cumulative(weights)
    chosen: set[str] = set()
    while len(chosen) < k:
        chosen.add(rng.choices(keys, cum_weights=cumulative)[0])
    return tuple(x for x in keys if x in chosen)


@functools.cache
def _cumulative_of(items: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    return [k for k, _ in items], list(itertools.accumulate(w for _, w in items))


def _cumulative(weights: dict[str, int]) -> tuple[list[str], list[int]]:
    return _cumulative_of(tuple(weights.items()))


def _count(rng: random.Random, weights: dict[int, int]) -> int:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum() or c == "-")


# --mixed-languages independent: each reader's language drawn alone, whatever they follow.
LANGUAGE_WEIGHTS = {"en": 5, "es": 4, "fr": 1}
# --mixed-languages by-region (the default): in the office's region the language follows the
# region: Spanish in Central and South America and Mexico, French in Haiti and the French
# Caribbean, English in the rest of the Caribbean, the United States, Canada (with French) and
# elsewhere. A reader who follows two regions draws from both regions' weights together.
LANGUAGES_BY_REGION = {
    "Central America": {"es": 85, "en": 15},
    "South America": {"es": 80, "en": 20},
    "North America": {"en": 60, "es": 35, "fr": 5},
    "Caribbean": {"en": 45, "fr": 30, "es": 25},
    "Rest of the world": {"en": 90, "es": 5, "fr": 5},
}
MIXED_LANGUAGES = ("by-region", "independent")


def _language_weights(regions: tuple[str, ...], mixed: str) -> dict[str, int]:
    if mixed == "independent":
        return LANGUAGE_WEIGHTS
    summed: Counter[str] = Counter()
    for region in regions:
        summed.update(LANGUAGES_BY_REGION[region])
    return {code: summed[code] for code in LANGUAGE_WEIGHTS if summed[code]}


def make_profiles(
    count: int, rng: random.Random, mixed_languages: str | None = None
) -> list[Profile]:
    """`mixed_languages` ("by-region" or "independent", see above): readers in en, es and fr,
    drawn after the rest so the other choices are the same as without."""
    profiles = [
        Profile(
            regions=_weighted(rng, REGION_WEIGHTS, _count(rng, REGION_COUNT_WEIGHTS)),
            topics=_weighted(rng, TOPIC_WEIGHTS, _count(rng, TOPIC_COUNT_WEIGHTS)),
            group_by="topic" if rng.random() < 0.4 else "region",
            named=rng.random() < 0.9,
        )
        for _ in range(count)
    ]
    if mixed_languages:
        language_rng = random.Random()
        language_rng.setstate(rng.getstate())  # rng itself goes on as without
        for profile in profiles:
            weights = _language_weights(profile.regions, mixed_languages)
            profile.language = _weighted(language_rng, weights, 1)[0]
    return profiles


def _flow_list(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(names) + "]"


def write_subscribers(path: Path, profiles: list[Profile], rng: random.Random) -> None:
    """subscribers.yaml written as text: yaml.dump per entry would take minutes at 100,000."""
    lines = ["# Synthetic subscribers for bench/throughput.py", "subscribers:"]
    for number, profile in enumerate(profiles):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = DOMAINS[number % len(DOMAINS)]
        lines.append(f"  - email: {_ascii(first)}.{_ascii(last)}.{number}@{domain}")
        if profile.named:
            name = rng.choice(TEAM_NAMES) if rng.random() < 0.03 else f"{first} {last}"
            lines.append(f"    name: {json.dumps(name, ensure_ascii=False)}")
        lines.append(f"    regions: {_flow_list(profile.regions)}")
        if profile.topics:
            lines.append(f"    topics: {_flow_list(profile.topics)}")
        if profile.group_by != "region" or rng.random() < 0.5:
            lines.append(f"    group_by: {profile.group_by}")
        if rng.random() < 0.2:
            lines.append(f"    timezone: {rng.choice(TIMEZONES)}")
        if profile.language != "en":  # the generated news is English: they read it too
            lines.append(f"    language: {profile.language}")
            lines.append(f"    item_languages: [{profile.language}, en]")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _place_terms(taxonomy: Taxonomy) -> dict[str, list[str]]:
    """Place words per region: capitalised terms, no acronyms, owned by that region alone."""
    owners = Counter(t for terms in taxonomy.region_terms.values() for t in set(terms))
    return {
        region: sorted(
            t
            for t in set(terms)
            if t[:1].isupper()
            and not t.isupper()
            and owners[t] == 1
            and t != region
            and not any(c in t for c in ",()")  # "Korea, Republic of" reads badly in a title
        )
        for region, terms in taxonomy.region_terms.items()
    }


def _topic_terms(taxonomy: Taxonomy) -> dict[str, list[str]]:
    owners = Counter(t for terms in taxonomy.topic_terms.values() for t in set(terms))
    return {
        topic: sorted(t for t in set(terms) if t.islower() and owners[t] == 1)
        for topic, terms in taxonomy.topic_terms.items()
    }


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def make_item(
    rng: random.Random,
    places: dict[str, list[str]],
    topic_words: dict[str, list[str]],
    day: date,
    titles: set[tuple[str, date]],
    topics: tuple[str, ...] | None = None,
) -> str:
    """One listing entry: a date line, a title, two summary paragraphs. With `topics`, a
    region-wide item on those topics; otherwise regions and topics are drawn by weight."""
    if topics is None:
        roll = rng.random()
        region_count = 0 if roll < 0.1 else (2 if roll > 0.9 else 1)  # 0: region-wide
        regions = _weighted(rng, REGION_WEIGHTS, region_count)
        topics = _weighted(rng, TOPIC_WEIGHTS, 2 if rng.random() < 0.35 else 1)
    else:
        regions = ()
    place_names = [rng.choice(places[r]) for r in regions] or ["the region"]
    topic_names = [rng.choice(topic_words[t]) for t in topics]
    values = {
        "place": _join(place_names),
        "topic": _join(topic_names),
        "weekday": rng.choice(WEEKDAYS),
        "n": rng.randint(12, 180),
    }
    title = rng.choice(TITLES).format(**values)
    title = title[0].upper() + title[1:]
    if (title, day) in titles:  # the same title and date would be one item to the readers
        title += f" ({len(titles)})"
    titles.add((title, day))
    middle = rng.sample(MIDDLES, 2)
    first = " ".join(s.format(**values) for s in (rng.choice(OPENINGS), middle[0]))
    second = " ".join(s.format(**values) for s in (middle[1], rng.choice(CLOSINGS)))
    return f"{day.day} {day:%B}, {day.year}\n\n{title}\n\n{first}\n\n{second}\n\n"


def _share(
    tags: tuple[tuple[str, ...], tuple[str, ...]], regions: Counter, topics: Counter, total: int
) -> float:
    """The share of subscribers an item with these (regions, topics) tags goes to."""
    item_regions, item_topics = set(tags[0]), set(tags[1])
    region_ok = (
        total
        if not item_regions
        else sum(n for chosen, n in regions.items() if not chosen or item_regions & set(chosen))
    )
    topic_ok = sum(n for chosen, n in topics.items() if not chosen or item_topics & set(chosen))
    return (region_ok / total) * (topic_ok / total)  # regions and topics are drawn apart


def write_items(
    folder: Path,
    profiles: list[Profile],
    items_per_digest: float,
    rng: random.Random,
    today: date,
) -> tuple[int, int, float]:
    """The sample listing plus generated items until the expected digest holds about
    `items_per_digest` items. Returns (generated, total, expected items per digest)."""
    from digest.sources.listing import parse_listing
    from digest.taxonomy import find_tags, load_taxonomy

    taxonomy = load_taxonomy()
    places, topic_words = _place_terms(taxonomy), _topic_terms(taxonomy)
    regions = Counter(p.regions for p in profiles)
    topics = Counter(p.topics for p in profiles)
    total = len(profiles)

    def share(text: str) -> float:
        found = find_tags(taxonomy, text, None, ())
        found_regions, found_topics = found.regions, found.topics
        return _share((tuple(found_regions), tuple(found_topics)), regions, topics, total)

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE_ITEMS, folder / SAMPLE_ITEMS.name)
    sample = SAMPLE_ITEMS.read_text(encoding="utf-8-sig")
    sample_items = parse_listing(sample, str(SAMPLE_ITEMS))
    expected = sum(share(f"{i.title}\n{i.summary}") for i in sample_items)
    entries: list[str] = []
    titles: set[tuple[str, date]] = set()
    # First one region-wide item per topic, so that every subscriber gets a digest (a
    # benchmark that skips some subscribers would measure fewer digests than it claims).
    coverage = [(t,) for t in taxonomy.topics]
    while (coverage or expected < items_per_digest) and len(entries) < 20_000:
        day = today - timedelta(days=rng.randint(0, 6))
        topics_wanted = coverage.pop(0) if coverage else None
        entry = make_item(rng, places, topic_words, day, titles, topics_wanted)
        _, title, *summary = [p for p in entry.split("\n\n") if p.strip()]
        expected += share(title + "\n" + "\n\n".join(summary))
        entries.append(entry)
    (folder / "generated.txt").write_text("".join(entries), encoding="utf-8")
    return len(entries), len(entries) + len(sample_items), expected


def write_settings(path: Path, port: int, connections: int) -> None:
    path.write_text(
        f"""# Written by bench/throughput.py
sender: "Regional Migration Digest <digest@example.org>"
subscribers: subscribers.yaml
templates: templates
state: state/state.db
sources: [{{path: items, language: en}}]  # English: no language detection to load
lookback: 14d
delivery:
  method: smtp
  smtp:
    host: 127.0.0.1
    port: {port}
    security: none
    connections: {connections}
    retries: 2
    retry_backoff: 0.5
    timeout: 60
unsubscribe_url: https://example.org/unsubscribe
token_secret_env: {TOKEN_SECRET_ENV}
""",
        encoding="utf-8",
    )


def build_project(
    root: Path,
    subscribers: int,
    port: int,
    connections: int,
    items_per_digest: float = 20.0,
    seed: int = 1,
    today: date | None = None,
    mixed_languages: str | None = None,
) -> Project:
    """A whole project folder in `root` (created): settings, templates, items, subscribers."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(TEMPLATES, root / "templates", dirs_exist_ok=True)
    profiles = make_profiles(subscribers, rng, mixed_languages)
    write_subscribers(root / "subscribers.yaml", profiles, rng)
    generated, total, expected = write_items(
        root / "items", profiles, items_per_digest, rng, today or date.today()
    )
    config = root / "digest.yaml"
    write_settings(config, port, connections)
    distinct = {(p.regions, p.topics, p.group_by, p.named, p.language) for p in profiles}
    return Project(root, config, subscribers, len(distinct), generated, total, expected)
