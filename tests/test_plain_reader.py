"""The quick reader of plain subscribers files (`subscribers.plain`) against the exact one.

Whatever a file holds, the quick reader either gives exactly the subscribers the exact reader
gives, or says NotPlain (and the exact reader, which names every problem, reads the file).
Hundreds of small files mixing the usual form with what YAML reads differently check that.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from digest.errors import ProblemList, SubscribersError
from digest.models import Subscriber
from digest.subscribers import SendList, iter_subscribers
from digest.subscribers.plain import NotPlain, plain_subscribers
from digest.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent
TAXONOMY = load_taxonomy(None)

# Ways of writing each line of an entry: the usual ones, and ones the quick reader must
# either read as YAML does or refuse.
EMAILS = [
    "ana@example.org", "Bea.Ruiz+news@Example.ORG", "'quoted@example.org'",
    '"double@example.org"', "  spaced@example.org  ", "not-an-address", "a@b",
    "x" * 250 + "@example.org", "&anchor@example.org", "-dash@example.org",
    "o'brien@example.org", "ana@example.org # a comment", "yes", "~", "",
    "café@example.org", "ana@example.org:", "tab\t@example.org",
]  # fmt: skip
NAMES = [
    '"Ana Pérez"', "Ana Pérez", "'O''Brien'", "'broken'quote'", '"esc\\"aped"', "yes",
    "No", "null", "~", "", "123", "3.5", "2024-01-01", "Ana # comment", "Ana: Pérez",
    "Jean-Baptiste Désir", '"  padded  "', "Zoë   two  spaces", "Ünïcödé ✓", "!!str tagged",
    "*alias", "|", ">", "[Ana]", "{a: b}", '"tab\there"', "Ana\u2028Pérez", "Ana\x85",
]  # fmt: skip
REGIONS = [
    "[Caribbean]", "[caribbean, CARIBBEAN]", "[Central America, South America]", "[]",
    "Caribbean", "[Atlantis]", "[Caribbean, ]", "[Caribbean,, Andes]", "['Caribbean']",
    "[Caribbean] # comment", "[yes]", "[Caribbean, [North America]]", "~", "",
    "[ Caribbean ,  North America ]", "[Rest of the world]",
]  # fmt: skip
TOPICS = ["[Health]", "[health, Diaspora]", "[]", "Health", "[Healthy]", "~", "[1]"]
OTHERS = [
    ("group_by", "topic"), ("group_by", "region"), ("group_by", "Topic"), ("group_by", "~"),
    ("order", "oldest"), ("order", "newest"), ("order", "Oldest"),
    ("frequency", "daily"), ("frequency", "weekly"), ("frequency", "hourly"),
    ("timezone", "America/Panama"), ("language", "es"), ("language", "fr"),
    ("item_languages", "[es, en]"), ("item_languages", "[fr]"),
    ("timezone", "Mars/Olympus"), ("timezone", "~"), ("timezone", ""), ("unknown", "x"),
    ("email", "again@example.org"), ("<<", "*base"), ("language", "ES"), ("language", "de"),
    ("language", "es-MX"), ("language", "no"), ("item_languages", "es"),
    ("item_languages", "[es, es, EN]"), ("item_languages", "[es, xx]"), ("item_languages", "[]"),
    ("item_languages", "~"), ("language", "~"),
]  # fmt: skip
USUAL_OTHERS = 15  # OTHERS[:15] are the usual ways
FILLERS = ["", "# a comment", "    # an indented comment", "   ", "      deeper: line"]


def _pick(rng: random.Random, choices: list[str], usual: int = 4) -> str:
    """Mostly one of the first `usual` (the usual ways), sometimes any."""
    return rng.choice(choices[:usual] if rng.random() < 0.9 else choices)


def _entry(rng: random.Random, number: int, dash: str, indent: str) -> list[str]:
    email = f"reader{number}@example.org" if rng.random() < 0.9 else rng.choice(EMAILS)
    lines = [f"{dash}email: {email}"]
    if rng.random() < 0.1:  # another first key
        lines = [f"{dash}name: {_pick(rng, NAMES)}", f"{indent}email: {email}"]
    for key, choices in (("name", NAMES), ("regions", REGIONS), ("topics", TOPICS)):
        if rng.random() < 0.7:
            lines.append(f"{indent}{key}: {_pick(rng, choices)}")
    for key, value in rng.sample(
        OTHERS[:USUAL_OTHERS] if rng.random() < 0.9 else OTHERS, rng.choice([0, 1, 2])
    ):
        lines.append(f"{indent}{key}: {value}")
    if rng.random() < 0.1:
        rng.shuffle(lines[1:])
    if rng.random() < 0.05:
        lines.insert(rng.randrange(1, len(lines) + 1), indent[:-2] + rng.choice(FILLERS))
    if rng.random() < 0.03:
        lines.append(f"{indent}regions:\n{indent}  - Caribbean")  # a block list
    return lines


def _file(rng: random.Random) -> str:
    depth = rng.choice([0, 2, 2, 2, 4])
    dash, indent = " " * depth + "- ", " " * (depth + 2)
    lines = ["# subscribers"] if rng.random() < 0.5 else []
    lines.append(rng.choice(["subscribers:", "subscribers:", "subscribers:  # the list"]))
    for number in range(rng.randint(1, 6)):
        lines.extend(_entry(rng, number if rng.random() < 0.9 else 0, dash, indent))
        if rng.random() < 0.2:
            lines.append(rng.choice(FILLERS[:4]))
    if rng.random() < 0.05:
        lines.append("other: key")
    newline = "\r\n" if rng.random() < 0.1 else "\n"
    end = newline if rng.random() < 0.9 else ""
    return newline.join(lines) + end


def _exact(path: Path) -> list[Subscriber] | str:
    try:
        return list(iter_subscribers(path, TAXONOMY))
    except (SubscribersError, ProblemList) as exc:
        return str(exc)


def _quick(path: Path) -> list[Subscriber] | None:
    try:
        return [Subscriber(*fields) for fields in plain_subscribers(path, TAXONOMY)]
    except NotPlain:
        return None


@pytest.mark.parametrize("seed", range(6))
def test_the_quick_reader_gives_what_the_exact_one_gives_or_declines(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if seed % 2:  # blocks end anywhere: in an entry, in a line, between CR and LF
        monkeypatch.setattr("digest.subscribers.plain.CHUNK", 7 + seed * 5)
    rng = random.Random(seed)
    read_quickly = 0
    for number in range(200):
        path = tmp_path / f"s{number}.yaml"
        path.write_bytes(_file(rng).encode("utf-8"))
        quick, exact = _quick(path), _exact(path)
        if quick is None:
            continue
        read_quickly += 1
        # Duplicates are the caller's to find (SendList); the rest must agree exactly.
        if isinstance(exact, str) and "duplicate address" in exact:
            continue
        assert quick == exact, path.read_text(encoding="utf-8")
    assert read_quickly > 10  # the usual form is read quickly


def test_the_shipped_list_and_a_written_out_one_are_read_quickly(tmp_path: Path) -> None:
    shipped = ROOT / "subscribers.yaml"
    assert _quick(shipped) == _exact(shipped)
    path = tmp_path / "subscribers.yaml"
    path.write_text(
        "subscribers:\n"
        + "".join(
            f'  - email: r{n}@example.org\n    name: "Réader {n}"\n    regions: [Caribbean]\n'
            f"    topics: [Health, Diaspora]\n    group_by: topic\n"
            + ("    order: oldest\n" if n % 3 else "")
            for n in range(300)
        ),
        encoding="utf-8",
    )
    quick = _quick(path)
    assert quick is not None and quick == _exact(path) and len(quick) == 300
    assert sum(s.order == "oldest" for s in quick) == 200


@pytest.mark.parametrize("chunk", [10, 333, 4096])
def test_a_plain_file_read_in_blocks_that_end_anywhere_is_still_read_quickly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr("digest.subscribers.plain.CHUNK", chunk)
    path = tmp_path / "subscribers.yaml"
    path.write_bytes(
        (
            "# readers\r\nsubscribers:\r\n"
            + "".join(
                f"  - email: r{n}@example.org\r\n    regions: [Caribbean]\r\n"
                f"    topics: [Health]\r\n" + ("\r\n" if n % 7 == 0 else "")
                for n in range(200)
            )
        ).encode()
    )
    quick = _quick(path)
    assert quick is not None and quick == _exact(path) and len(quick) == 200


def test_a_send_list_of_a_plain_file_does_not_read_it_the_slow_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "subscribers.yaml"
    path.write_text(
        "subscribers:\n"
        + "".join(f"  - email: r{n}@example.org\n    regions: [Caribbean]\n" for n in range(50)),
        encoding="utf-8",
    )

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("read the exact way")

    monkeypatch.setattr("digest.subscribers.send_list.iter_subscribers", refuse)
    with SendList.build(path, TAXONOMY, tmp_path / "state.db") as send_list:
        assert sorted(s.email for s in send_list.read()) == sorted(
            f"r{n}@example.org" for n in range(50)
        )


def test_a_plain_file_with_a_duplicate_is_reported_by_the_exact_reader(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.yaml"
    entries = [f"  - email: r{n}@example.org\n    regions: [Caribbean]\n" for n in range(20)]
    entries.append("  - email: R3@Example.org\n")
    path.write_text("subscribers:\n" + "".join(entries), encoding="utf-8")
    with pytest.raises(SubscribersError) as raised:
        SendList.build(path, TAXONOMY, tmp_path / "state.db")
    assert "subscribers.yaml:42" in str(raised.value)
    assert "duplicate address (already listed on line 8)" in str(raised.value)
