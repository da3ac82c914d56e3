"""Long feeds written for the tests: blogs that put whole articles in `content:encoded` (RSS)
or `content` (Atom), with images, tracking pixels, scripts, "Continue reading" links and
WordPress's "The post ... appeared first on ..." line. The text is made up here, sentence by
sentence, so every article is different and long. (Written for digest's tests; no outside
source.)"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

SUBJECTS = [
    "The shelter in Tapachula",
    "A new consular office",
    "The regional conference",
    "Seasonal workers from Guatemala",
    "The returnees' reception centre",
    "A survey of remittances",
    "The border health post",
    "Volunteers in San Pedro Sula",
]
VERBS = ["opened", "extended", "reviewed", "announced", "welcomed", "counted", "trained", "funded"]
OBJECTS = [
    "its hours for families arriving at night",
    "a programme for unaccompanied children",
    "the figures for the third quarter",
    "two hundred new arrivals from the coast",
    "a partnership with the municipality",
    "training for staff on labour rights",
    "a plan to reduce waiting times at the crossing",
    "support for people displaced by the storm",
]
FIRST_LINE = "Migration news from the region, as reported by our partners."


def sentence(rng: random.Random) -> str:
    extra = rng.choice(["", " this week", " on Monday", " after a long delay", " with IOM"])
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{extra}."


def article_html(rng: random.Random, number: int, paragraphs: int = 9) -> str:
    """A whole article as a blog's feed carries it."""
    parts = [
        f'<p><img src="https://blog.example.net/header-{number}.jpg" alt="Header photo"></p>',
        f"<p><strong>{FIRST_LINE}</strong> {' '.join(sentence(rng) for _ in range(4))}</p>",
    ]
    for index in range(paragraphs):
        parts.append("<p>" + " ".join(sentence(rng) for _ in range(rng.randint(3, 7))) + "</p>")
        if index == 2:
            parts.append(
                '<figure><img src="https://blog.example.net/photo.jpg" alt="A photo">'
                "<figcaption>Volunteers at work (photo caption)</figcaption></figure>"
            )
            parts.append("<ul><li>First point of the list.</li><li>Second point.</li></ul>")
    parts += [
        "<script>track('view');</script><style>.x{color:red}</style>",
        f'<img src="https://pixel.example.net/t.gif?id={number}" width="1" height="1" alt="">',
        f'<p><a href="https://blog.example.net/{number}#more">Continue reading &rarr;</a></p>',
        f'<p>The post <a href="https://blog.example.net/{number}">Story {number}</a> appeared '
        'first on <a href="https://blog.example.net/">Partner Blog</a>.</p>',
    ]
    return "\n".join(parts)


def rss_feed(count: int, seed: int, start: datetime, link: bool = True) -> str:
    rng = random.Random(seed)
    entries = []
    for number in range(count):
        when = start + timedelta(hours=5 * number)
        title = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} a plan (part {seed}-{number})"
        description = (
            f"<description>{escape(sentence(rng))} {escape(sentence(rng))}</description>"
            if number % 3 == 0
            else ""
        )
        entries.append(
            "<item>"
            f"<title>{escape(title)}</title>"
            + (f"<link>https://blog.example.net/{seed}/{number}</link>" if link else "")
            + f"<guid>urn:test:{seed}:{number}</guid>"
            f"<pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
            f"<category>Central America</category>{description}"
            f"<content:encoded><![CDATA[{article_html(rng, number)}]]></content:encoded>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Partner Blog {seed}</title><link>https://blog.example.net/</link>"
        f"<description>Test feed</description>{''.join(entries)}</channel></rss>\n"
    )


def atom_feed(count: int, seed: int, start: datetime) -> str:
    rng = random.Random(seed)
    entries = []
    for number in range(count):
        when = (start + timedelta(hours=7 * number)).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries.append(
            "<entry>"
            f"<title>Release notes {seed}.{number}: shelters and services</title>"
            f'<link href="https://notes.example.net/{seed}/{number}"/>'
            f"<id>urn:test:atom:{seed}:{number}</id><updated>{when}</updated>"
            f'<content type="html">{escape(article_html(rng, number, 14))}</content>'
            "</entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Notes {seed}</title><id>urn:test:atom:{seed}</id>"
        f"<updated>{start.strftime('%Y-%m-%dT%H:%M:%SZ')}</updated>{''.join(entries)}</feed>\n"
    )


def write_long_feeds(folder: Path, start: datetime | None = None) -> list[Path]:
    """Four feeds, 60 articles in all, into `folder`."""
    start = start or datetime(2026, 11, 16, 8, tzinfo=UTC)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "partner-a.rss": rss_feed(20, 1, start),
        "partner-b.rss": rss_feed(15, 2, start + timedelta(hours=2)),
        "no-links.rss": rss_feed(5, 3, start + timedelta(hours=3), link=False),
        "notes.atom": atom_feed(20, 4, start + timedelta(hours=1)),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [folder / name for name in files]
