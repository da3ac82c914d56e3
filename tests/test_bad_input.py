"""Bad input files get a clear error naming the file and line, and lose nothing: alias bombs,
duplicate keys, files that are not UTF-8, complex keys, deep nesting, control characters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from digest.errors import ProblemList, SettingsError, SubscribersError
from digest.settings import load_settings
from digest.subscribers import load_subscribers
from digest.taxonomy import load_taxonomy

from .conftest import Project

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def _subscribers_error(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SubscribersError) as caught:
        load_subscribers(path, load_taxonomy())
    return str(caught.value)


def test_an_alias_bomb_in_subscribers_yaml_is_refused_at_once(tmp_path: Path) -> None:
    levels = "".join(
        f"    {name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
    text = (
        "subscribers:\n  - email: a@example.org\n    name: &a [lol, lol, lol, lol, lol]\n"
        f"  - email: b@example.org\n{levels}"
    )
    started = time.monotonic()
    message = _subscribers_error(tmp_path / "subscribers.yaml", text)
    assert time.monotonic() - started < 1
    assert f"{tmp_path / 'subscribers.yaml'}:" in message
    assert "aliases (*name) here expand to more than 10,000 values" in message


def test_aliases_a_tool_writes_for_a_shared_list_still_read(tmp_path: Path) -> None:
    """PyYAML writes `&id001` / `*id001` when entries share a list: such files still work."""
    path = tmp_path / "subscribers.yaml"
    path.write_text(
        "subscribers:\n- email: a@example.org\n  regions: &id001\n  - Caribbean\n"
        "- email: b@example.org\n  regions: *id001\n"
    )
    a, b = load_subscribers(path, load_taxonomy())
    assert a.regions == b.regions == ("Caribbean",)


def test_a_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    text = "subscribers:\n  - email: ana@example.org\n    name: Ana\n    email: other@example.org\n"
    message = _subscribers_error(tmp_path / "subscribers.yaml", text)
    assert ":4: not valid YAML: duplicate key 'email' (first on line 2)" in message


def test_the_cli_reports_a_duplicate_key_and_sends_nothing(project: Project) -> None:
    (project.root / "subscribers.yaml").write_text(
        "subscribers:\n  - email: ana@example.org\n    email: other@example.org\n"
    )
    for command in (("check",), ("send",)):
        result = project.run(*command)
        assert result.returncode == 2, result.stderr
        assert "duplicate key 'email' (first on line 2)" in result.stderr
    assert project.maildir_messages() == []


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (BOMB.encode(), "expand to more than 100,000 values"),
        ("sender: Digest <d@example.org>\n".encode("utf-16"), "the file is UTF-16"),
        (b"sender: Caf\xe9 <d@example.org>\n", ":1: not valid YAML: not UTF-8 text (byte 0xe9)"),
        (b"? [a, b]\n: 1\n", ":1: not valid YAML: a key must be a plain name, not a list"),
        (b"lookback: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        (b'sender: "Dig\\0est <d@example.org>"\n', "control characters are not allowed"),
    ],
    ids=["alias-bomb", "utf-16", "latin-1", "complex-key", "deep", "nul-in-sender"],
)
def test_a_broken_settings_file_is_a_clear_error(tmp_path: Path, content: bytes, said: str) -> None:
    path = tmp_path / "digest.yaml"
    path.write_bytes(content)
    started = time.monotonic()
    with pytest.raises((SettingsError, ProblemList)) as caught:  # files it names are missing
        load_settings(path)
    assert time.monotonic() - started < 10  # refused, not a 50-second climb to a MemoryError
    assert str(path) in str(caught.value) and said in str(caught.value)


def test_the_cli_exits_2_with_no_traceback_on_a_settings_file_that_is_not_utf8(
    project: Project,
) -> None:
    project.config.write_bytes("sender: Digest <d@example.org>\n".encode("utf-16"))
    result = project.run("send")
    assert result.returncode == 2
    assert "the file is UTF-16: save it as UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_bad_markdown_file_is_reported_and_the_other_sources_still_send(
    project: Project,
) -> None:
    bomb = "---\ntitle: Bomb\ndate: 2026-11-20\n" + BOMB.replace("\n", "\n") + "summary: *i\n---\n"
    (project.root / "items" / "bomb.md").write_text(bomb)
    (project.root / "items" / "deep.md").write_text(
        "---\ntitle: Deep\ndate: 2026-11-20\nsummary: " + "[" * 5000 + "]" * 5000 + "\n---\nx\n"
    )
    started = time.monotonic()
    result = project.run("send")
    assert time.monotonic() - started < 60
    assert result.returncode == 0, result.stderr
    assert "bomb.md:5: front matter: alias *a is not allowed here" in result.stderr
    assert "deep.md" in result.stderr and "nested too deeply" in result.stderr
    assert len(project.maildir_messages()) > 0
