"""subscribers.yaml validation: every problem names the file, line and subscriber."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import ProblemList, SubscribersError
from digest.subscribers import load_subscribers
from digest.taxonomy import load_taxonomy

from .conftest import ROOT

TAXONOMY = load_taxonomy()


def problems(tmp_path: Path, text: str) -> str:
    path = tmp_path / "subscribers.yaml"
    path.write_text(text)
    with pytest.raises((SubscribersError, ProblemList)) as info:
        load_subscribers(path, TAXONOMY)
    return str(info.value)


def test_the_shipped_subscribers_cover_the_sample_regions_and_topics() -> None:
    subscribers = load_subscribers(ROOT / "subscribers.yaml", TAXONOMY)
    assert len(subscribers) >= 5
    regions = {r for s in subscribers for r in s.regions}
    assert {"Central America", "North America", "Caribbean"} <= regions
    ana = subscribers[0]
    assert ana.email == "ana@example.org" and ana.name == "Ana Pérez"
    assert ana.regions == ("Central America",) and ana.group_by == "region"


def test_invalid_address(tmp_path: Path) -> None:
    message = problems(tmp_path, "subscribers:\n  - email: ana@@example\n    name: Ana\n")
    assert f"{tmp_path / 'subscribers.yaml'}:2: subscriber 'ana@@example': invalid email" in message


def test_duplicate_address_names_both_lines(tmp_path: Path) -> None:
    message = problems(
        tmp_path,
        "subscribers:\n  - email: ana@example.org\n  - email: other@example.org\n"
        "  - email: ANA@example.org\n",
    )
    assert (
        ":4: subscriber 'ANA@example.org': duplicate address (already listed on line 2)" in message
    )


def test_unknown_region_suggests_the_nearest_and_lists_the_known(tmp_path: Path) -> None:
    message = problems(
        tmp_path,
        "subscribers:\n  - email: ana@example.org\n    regions: [Carribean]\n"
        "    topics: [Labor migration]\n",
    )
    assert (
        ":3: subscriber 'ana@example.org': unknown region 'Carribean' (did you mean 'Caribbean'?)"
        in message
    )
    assert "known regions: Central America, North America, Caribbean" in message
    assert (
        ":4: subscriber 'ana@example.org': unknown topic 'Labor migration' (did you mean 'Labour migration'?)"
        in message
    )


def test_unknown_key_and_bad_grouping(tmp_path: Path) -> None:
    message = problems(
        tmp_path,
        "subscribers:\n  - email: ana@example.org\n    regoins: [Caribbean]\n    group_by: country\n",
    )
    assert (
        ":3: subscriber 'ana@example.org': unknown key 'regoins' (did you mean 'regions'?)"
        in message
    )
    assert ":4: subscriber 'ana@example.org': 'group_by': expected region or topic" in message


def test_line_breaks_in_names_are_refused(tmp_path: Path) -> None:
    message = problems(
        tmp_path,
        'subscribers:\n  - email: ana@example.org\n    name: "Ana\\r\\nBcc: x@evil.example"\n',
    )
    assert ":3: subscriber 'ana@example.org': 'name': expected one line of text" in message


def test_malformed_yaml(tmp_path: Path) -> None:
    message = problems(tmp_path, "subscribers:\n  - email: ana@example.org\n   name: [Ana\n")
    assert "not valid YAML" in message and "nothing was sent" in message


def test_case_of_region_names_is_forgiven(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.yaml"
    path.write_text("subscribers:\n  - email: ana@example.org\n    regions: [caribbean]\n")
    [ana] = load_subscribers(path, TAXONOMY)
    assert ana.regions == ("Caribbean",)


def test_the_file_is_read_one_entry_at_a_time_with_yaml_features_intact(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.yaml"
    path.write_text(
        "# staff file\nsubscribers:\n"
        "  - &caribbean {email: a@example.org, regions: [Caribbean], group_by: topic}\n"
        "  - <<: *caribbean\n    email: b@example.org\n"
        "  - email: c@example.org\n    topics: [Health]\n"
    )
    a, b, c = load_subscribers(path, TAXONOMY)
    assert (b.email, b.regions, b.group_by) == ("b@example.org", ("Caribbean",), "topic")
    assert c.line == 6 and c.topics == ("Health",)


@pytest.mark.parametrize("text", ["", "subscribers:\n", "# nobody yet\n"])
def test_an_empty_file_means_no_subscribers(tmp_path: Path, text: str) -> None:
    path = tmp_path / "subscribers.yaml"
    path.write_text(text)
    assert load_subscribers(path, TAXONOMY) == []


def test_unknown_top_level_key_and_wrong_shape(tmp_path: Path) -> None:
    message = problems(tmp_path, "subscribers:\n  - email: a@example.org\nsubscriber:\n  - x\n")
    assert f"{tmp_path / 'subscribers.yaml'}:3: unknown key 'subscriber'" in message
    assert "expected 'subscribers:' followed by a list" in problems(tmp_path, "subscribers: 5\n")
    assert "expected 'subscribers:' followed by a list" in problems(tmp_path, "- a\n- b\n")
