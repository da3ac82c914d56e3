"""An emptied, cut short or damaged state never passes for a fresh install, backups, and the
suppression journal that keeps unsubscribed readers out even when the state is lost."""

from __future__ import annotations

import email
import email.policy
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.state import State, WebChanges
from digest.state.suppressions import journal_path, suppressed

from .conftest import Project

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _first_send(project: Project) -> int:
    project.run("send", check=True)
    sent = len(project.maildir_messages())
    assert sent > 0
    return sent


def _damage(path: Path, how: str) -> None:
    if how == "emptied":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"this is not a database\n" * 200)
    else:  # truncated: the first pages only
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize(
    ("how", "said"),
    [("emptied", "is empty (0 bytes)"), ("garbage", "is damaged"), ("truncated", "truncated")],
)
def test_a_damaged_state_stops_every_writing_command_and_check_reports_it(
    project: Project, how: str, said: str
) -> None:
    sent = _first_send(project)
    with State(project.state) as state:  # checkpointed: the file alone holds the state
        state.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _damage(project.state, how)
    for command in (("send",), ("items",), ("send", "--dry-run")):
        result = project.run(*command)
        assert result.returncode == 2, (command, result.stderr)
        assert str(project.state) in result.stderr and said in result.stderr
        assert "restore the state from your latest backup" in result.stderr
        assert "Traceback" not in result.stderr
    assert len(project.maildir_messages()) == sent  # nothing went out again
    check = project.run("check")
    assert check.returncode == 2 and said in check.stderr


def test_backup_copies_the_state_whole_and_refuses_a_damaged_one(
    project: Project, tmp_path: Path
) -> None:
    _first_send(project)
    folder = tmp_path / "backups"
    folder.mkdir()
    result = project.run("state", "backup", str(folder))
    assert result.returncode == 0, result.stderr
    (copy,) = folder.glob("state-*.db")
    with sqlite3.connect(copy) as backup, sqlite3.connect(project.state) as live:
        query = "SELECT subscriber, status, message_id FROM deliveries ORDER BY id"
        assert backup.execute(query).fetchall() == live.execute(query).fetchall()
        assert backup.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Restoring the copy over an emptied state: the next send repeats nothing.
    _damage(project.state, "emptied")
    project.state.write_bytes(copy.read_bytes())
    again = project.run("send")
    assert again.returncode == 0, again.stderr
    assert "Nothing new to send" in again.stdout
    _damage(project.state, "garbage")
    refused = project.run("state", "backup", str(folder / "second.db"))
    assert refused.returncode == 2 and "is damaged" in refused.stderr
    assert not (folder / "second.db").exists()


def test_the_suppression_journal_keeps_an_unsubscribed_reader_out_when_the_state_is_lost(
    project: Project,
) -> None:
    _first_send(project)
    with State(project.state) as state:
        WebChanges(state).unsubscribe("Ana@Example.org", "one-click", NOW)
    journal = journal_path(project.state)
    assert "\tunsubscribe\tAna@Example.org\tone-click" in journal.read_text()
    assert suppressed(journal) == {"ana@example.org"}
    for leftover in project.state.parent.glob("state.db*"):
        leftover.unlink()  # the state is gone: the next send starts afresh
    before = set((project.outbox / "new").iterdir())
    result = project.run("send", "--json")
    assert result.returncode == 0, result.stderr
    mailed = {
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["To"]
        .addresses[0]
        .addr_spec
        for path in set((project.outbox / "new").iterdir()) - before
    }
    assert mailed and "ana@example.org" not in mailed
    # Resubscribing (here through the web's record) lifts it, in the journal too.
    with State(project.state) as state:
        WebChanges(state).unsubscribe("ana@example.org", "one-click", NOW)
        WebChanges(state).resubscribe("ana@example.org", "preferences", NOW, in_file=True)
    assert suppressed(journal) == set()


def test_sqlite_failures_become_errors_naming_the_state(tmp_path: Path) -> None:
    """Real SQLite failures (a read-only file, a full database) as the person sees them."""
    from digest.errors import StateError
    from digest.state.integrity import translate

    path = tmp_path / "state.db"
    State(path).close()
    readonly = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as write:
        readonly.execute("INSERT INTO meta VALUES ('k', 'v')")
    readonly.close()
    error = translate(write.value, path)
    assert isinstance(error, StateError) and error.message.startswith(str(path))
    assert "cannot be written (read-only)" in error.message

    full = sqlite3.connect(path)  # a database that may not grow: SQLite says the disk is full
    full.execute("PRAGMA max_page_count = 1")
    with pytest.raises(sqlite3.OperationalError) as grow:
        full.execute("INSERT INTO meta VALUES ('big', ?)", ("x" * 100_000,))
    full.close()
    assert "the disk holding the state is full" in translate(grow.value, path).message


def test_a_state_folder_that_cannot_be_made_is_a_clear_error(project: Project) -> None:
    project.settings(state="/proc/digest-state/state.db")
    result = project.run("send")
    assert result.returncode == 2
    assert "/proc/digest-state/state.db: cannot create the state's folder" in result.stderr
    assert "check that the folder can be written" in result.stderr
    assert "Traceback" not in result.stderr
