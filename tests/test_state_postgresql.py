"""The state on a PostgreSQL server: the setting, the errors a person must see, the schema and
its version, the connection's SQLite-style placeholders, and sends whose run several hosts
share (claims, leases, take-over)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Project, SmtpServer

pytestmark = pytest.mark.postgresql


def test_send_on_postgresql_sends_once_and_history_shows_the_run(
    project: Project, postgres_url: str
) -> None:
    project.use_postgresql(postgres_url)
    first = project.run("send", "--json", check=True)
    sent = json.loads(first.stdout)["sent"]
    assert sent > 0
    assert len(project.maildir_messages()) == sent
    assert not (project.root / "postgresql:").exists()
    again = json.loads(project.run("send", "--json", check=True).stdout)
    assert again["sent"] == 0
    history = project.run("history", check=True).stdout
    assert "ok" in history
    rows = project.query("SELECT status, sent FROM runs ORDER BY id")
    assert rows[0] == ("ok", sent)
