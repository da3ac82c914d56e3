"""digest.yaml: defaults, resolved paths, and errors naming file, line, key and expectation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from digest.errors import ProblemList, SettingsError
from digest.settings import SourceSettings, load_settings

from .conftest import ROOT, Project


def test_the_shipped_settings_load_with_paths_resolved_against_their_folder() -> None:
    settings = load_settings(ROOT / "digest.yaml")
    assert settings.subscribers == ROOT / "subscribers.yaml"
    assert settings.templates == ROOT / "templates"
    assert settings.state == ROOT / ".digest" / "state.db"
    assert settings.sources == (SourceSettings(str(ROOT / "items")),)
    assert settings.delivery.method == "maildir"
    assert settings.delivery.maildir == ROOT / "outbox"
    assert settings.delivery.smtp.password_env == "DIGEST_SMTP_PASSWORD"
    assert settings.lookback == timedelta(days=14)
    assert settings.sender_domain == "example.org"


def test_missing_settings_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="settings file not found") as info:
        load_settings(tmp_path / "digest.yaml")
    assert "--config" in (info.value.hint or "")


def _errors(project: Project, text: str) -> str:
    project.config.write_text(text)
    with pytest.raises((SettingsError, ProblemList)) as info:
        load_settings(project.config)
    return str(info.value)


def test_unknown_key_names_file_line_and_key(project: Project) -> None:
    message = _errors(project, "sender: Digest <d@example.org>\nsubscriber: subscribers.yaml\n")
    assert f"{project.config}:2: setting 'subscriber': expected one of" in message


def test_wrong_type_names_the_nested_key(project: Project) -> None:
    message = _errors(project, "delivery:\n  method: smtp\n  smtp:\n    port: twenty-five\n")
    assert f"{project.config}:4: setting 'delivery.smtp.port': expected a port number" in message


def test_bad_choice_and_bad_sender(project: Project) -> None:
    message = _errors(project, "sender: nobody\ndelivery: {method: pigeon}\n")
    assert "setting 'sender': expected a sender address" in message
    assert "setting 'delivery.method': expected maildir or smtp, got 'pigeon'" in message


def test_missing_files_name_the_key(project: Project) -> None:
    message = _errors(project, "subscribers: nobody.yaml\nsources: [items, missing-folder]\n")
    assert "setting 'subscribers': expected an existing file" in message
    assert "nobody.yaml" in message
    assert "setting 'sources': expected existing files, folders or URLs" in message
    assert "missing-folder" in message


def test_malformed_yaml_names_the_line(project: Project) -> None:
    message = _errors(project, "sender: Digest <d@example.org>\ndelivery:\n  method: [smtp\n")
    assert f"{project.config}:" in message and "not valid YAML" in message


def test_line_breaks_are_refused_in_the_sender(project: Project) -> None:
    message = _errors(project, 'sender: "Digest <d@example.org>\\r\\nBcc: x@evil.example"\n')
    assert "setting 'sender'" in message and "line breaks are not allowed" in message


def test_durations_and_urls(project: Project) -> None:
    project.settings(lookback="3w", unsubscribe_url="https://news.example.org/u")
    settings = load_settings(project.config)
    assert settings.lookback == timedelta(weeks=3)
    assert settings.unsubscribe_url == "https://news.example.org/u"
    message = _errors(project, "lookback: soon\n")
    assert "setting 'lookback': expected a duration" in message
