"""SendList: a send's subscribers checked into a temporary SQLite file and read back in shares."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from digest.errors import ProblemList, SubscribersError
from digest.selection import preference_key
from digest.subscribers import SendList, load_subscribers
from digest.taxonomy import load_taxonomy

from .conftest import Project

TAXONOMY = load_taxonomy(None)


def write(path: Path, entries: list[str]) -> Path:
    path.write_text("subscribers:\n" + "".join(entries), encoding="utf-8")
    return path


def entry(email: str, regions: str = "[Caribbean]", topics: str = "[]") -> str:
    return f"  - email: {email}\n    regions: {regions}\n    topics: {topics}\n"


def test_the_shipped_list_reads_back_the_same_in_shares(project: Project) -> None:
    path = project.root / "subscribers.yaml"
    expected = load_subscribers(path, TAXONOMY)
    with SendList.build(path, TAXONOMY, project.state) as send_list:
        assert len(send_list) == len(expected) == 7
        everyone = list(send_list.read())
        shares = [list(send_list.read(shard, 3)) for shard in range(3)]
    assert sorted(everyone, key=lambda s: s.email) == sorted(expected, key=lambda s: s.email)
    assert sorted((s for share in shares for s in share), key=lambda s: s.email) == sorted(
        expected, key=lambda s: s.email
    )
    # the same preferences are sent by one worker only, one after another
    for share in shares:
        keys = [preference_key(s) for s in share]
        assert keys == sorted(keys, key=repr)
    owners = {preference_key(s): n for n, share in enumerate(shares) for s in share}
    assert len(owners) == len({preference_key(s) for s in expected})


def test_a_duplicate_names_both_lines_and_leaves_no_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "subscribers.yaml",
        [entry("ana@example.org"), entry("bea@example.org"), entry("ANA@example.org")],
    )
    before = set(Path(tempfile.gettempdir()).glob("digest-send-*.db"))
    with pytest.raises(SubscribersError) as raised:
        SendList.build(path, TAXONOMY, tmp_path / "state.db")
    assert "subscribers.yaml:8" in str(raised.value)
    assert "duplicate address (already listed on line 2)" in str(raised.value)
    assert set(Path(tempfile.gettempdir()).glob("digest-send-*.db")) == before


def test_duplicates_written_in_batches_are_reported_in_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "digest.subscribers.send_list.BATCH", 3
    )  # addresses reach the file 3 at a time
    entries = [entry(f"reader{n}@example.org") for n in range(10)]
    entries.insert(5, entry("oops@example.org", regions="[Atlantis]"))
    entries.append(entry("Reader1@example.org"))
    entries.append(entry("reader7@EXAMPLE.org"))
    path = write(tmp_path / "subscribers.yaml", entries)
    with pytest.raises(ProblemList) as raised:
        SendList.build(path, TAXONOMY, tmp_path / "state.db")
    problems = [str(p) for p in raised.value.problems]
    assert len(problems) == 3
    assert "unknown region 'Atlantis'" in problems[0]
    assert "'Reader1@example.org': duplicate address (already listed on line 5)" in problems[1]
    assert "'reader7@EXAMPLE.org': duplicate address (already listed on line" in problems[2]


def test_every_problem_is_reported_even_after_valid_entries(tmp_path: Path) -> None:
    entries = [entry(f"reader{n}@example.org") for n in range(50)]
    entries.insert(10, entry("oops@example.org", regions="[Atlantis]"))
    entries.append(entry("not-an-address"))
    path = write(tmp_path / "subscribers.yaml", entries)
    with pytest.raises(ProblemList) as raised:
        SendList.build(path, TAXONOMY, tmp_path / "state.db")
    text = str(raised.value)
    assert "unknown region 'Atlantis'" in text and "invalid email address" in text


def test_only_keeps_the_named_addresses_and_rejects_unknown_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "subscribers.yaml", [entry("ana@example.org"), entry("bea@x.org")])
    with SendList.build(path, TAXONOMY, tmp_path / "state.db", only=["Ana@Example.org"]) as kept:
        assert [s.email for s in kept.read()] == ["ana@example.org"]
    with pytest.raises(SubscribersError, match="--only zoe@example.org: not in the subscribers"):
        SendList.build(path, TAXONOMY, tmp_path / "state.db", only=["zoe@example.org"])


def test_readers_of_every_language_with_the_same_preferences_are_sent_together(
    tmp_path: Path,
) -> None:
    """One worker sends them, one after another: they share the digest's arrangement."""
    preferences = [("[Caribbean]", "[Health]"), ("[Central America]", "[]"), ("[Caribbean]", "[]")]
    entries = [
        entry(f"en.{number}@example.org", regions, topics)
        + "".join(
            entry(f"{code}.{number}@example.org", regions, topics)
            + f"    language: {code}\n    item_languages: [{code}, en]\n"
            for code in ("es", "fr")
        )
        for number, (regions, topics) in enumerate(preferences)
    ]
    path = write(tmp_path / "subscribers.yaml", entries)
    with SendList.build(path, TAXONOMY, tmp_path / "state.db") as send_list:
        for shards in (2, 3):
            shares = [[s.email for s in send_list.read(shard, shards)] for shard in range(shards)]
            for number in range(len(preferences)):
                readers = [f"{code}.{number}@example.org" for code in ("en", "es", "fr")]
                [share] = [share for share in shares if readers[0] in share]
                first = share.index(readers[0])
                assert share[first : first + 3] == readers


@pytest.mark.parametrize("plain", [True, False])
def test_languages_are_kept_and_part_of_the_preferences(tmp_path: Path, plain: bool) -> None:
    """Readers alike but for their language are sent apart, whichever reader read the file
    (the quick one for the plain form, the exact one for flow mappings)."""
    people = [
        ("ana@example.org", "es", "[es, en]"),
        ("bea@example.org", "fr", None),
        ("carl@example.org", None, None),
        ("dora@example.org", "es", "[es, en]"),
    ]
    lines = []
    for email, language, wanted in people:
        settings = [("regions", "[Caribbean]")]
        settings += [("language", language)] if language else []
        settings += [("item_languages", wanted)] if wanted else []
        if plain:
            lines.append(entry(email) + "".join(f"    {k}: {v}\n" for k, v in settings[1:]))
        else:
            lines.append(
                f"  - {{email: {email}, " + ", ".join(f"{k}: {v}" for k, v in settings) + "}\n"
            )
    path = write(tmp_path / "s.yaml", lines)
    with SendList.build(path, TAXONOMY, tmp_path / "state.db") as send_list:
        read = {s.email: s for s in send_list.read()}
        shares = [[s.email for s in send_list.read(shard, 2)] for shard in range(2)]
    assert read == {s.email: s for s in load_subscribers(path, TAXONOMY)}
    ana = read["ana@example.org"]
    assert (ana.language, ana.item_languages) == ("es", ("es", "en"))
    assert read["bea@example.org"].language == "fr" and read["carl@example.org"].language is None
    # Ana and Dora (the same preferences) go one after the other, from one worker
    share = next(s for s in shares if "ana@example.org" in s)
    assert share.index("dora@example.org") == share.index("ana@example.org") + 1
