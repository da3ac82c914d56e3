"""What keeps a send of a very long list fast and small: worker processes started while the
list is checked, the acceptance log folded in batches, workers without the taxonomy's
lexicon (the curve itself is measured by bench/throughput.py, not here)."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime

import pytest

from digest.send import journal, processes, run
from digest.send.pickup import tagged_items
from digest.settings import load_settings
from digest.state import BounceRecords, State, WebChanges, suppressions
from digest.subscribers import SendList, load_effective_subscribers
from digest.taxonomy import load_taxonomy

from .conftest import Project, SmtpServer
from .test_delivery_faults import deliveries

REGIONS = ["Central America", "Caribbean", "North America", "South America"]


def _plain_list(project: Project, count: int, bad: str | None = None) -> None:
    """subscribers.yaml in the plain form (read by the quick reader)."""
    lines = ["subscribers:"]
    for n in range(count):
        lines += [
            f"  - email: reader{n}@example.org",
            f'    name: "Réader {n}"',
            f"    regions: [{bad if bad and n == count - 1 else REGIONS[n % 4]}]",
        ]
        if n % 5 == 1:
            lines.append("    order: oldest")
    (project.root / "subscribers.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_workers_started_while_the_list_is_checked_send_the_run(
    project: Project, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes, "EARLY_BYTES", 0)  # any list starts them early

    def late(*args: object, **kwargs: object) -> None:
        raise AssertionError("workers started after the check")

    monkeypatch.setattr(run, "deliver_in_processes", late)
    _plain_list(project, 240)
    project.use_smtp(smtp_server, connections=2)
    result = project.run("send", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 240
    assert all(smtp_server.handler.count_for(f"reader{n}@example.org") == 1 for n in range(240))
    assert {r["status"] for r in deliveries(project)} == {"sent"}
    assert not multiprocessing.active_children()


def test_workers_started_early_send_nothing_when_the_list_is_not_valid(
    project: Project, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes, "EARLY_BYTES", 0)
    _plain_list(project, 240, bad="Atlantis")
    project.use_smtp(smtp_server, connections=2)
    result = project.run("send")
    assert result.returncode == 2
    assert "subscribers.yaml:769" in result.stderr and "unknown region 'Atlantis'" in result.stderr
    assert smtp_server.handler.received == []
    assert not multiprocessing.active_children()


def test_workers_started_early_step_aside_for_a_short_list(
    project: Project, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes, "EARLY_BYTES", 0)
    _plain_list(project, 20)  # under 200: sent by this process
    project.use_smtp(smtp_server, connections=2)
    result = project.run("send", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 20
    assert not multiprocessing.active_children()


def test_the_acceptance_log_is_folded_a_batch_at_a_time(
    project: Project, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plain_list(project, 5)
    project.use_smtp(smtp_server)
    assert project.run("send").returncode == 0
    with State(project.state) as state:
        rows = state.db.execute("SELECT id FROM deliveries ORDER BY id").fetchall()
        state.db.execute("UPDATE deliveries SET status = 'pending'")  # as a kill leaves them
        log = journal.acceptance_log_path(state.path)
        log.write_text("".join(f"{r[0]}\t1\n" for r in rows) + "12", encoding="ascii")
        monkeypatch.setattr(journal, "FOLD_BATCH", 2)
        assert journal.fold_acceptances(state) == 5
        assert journal.fold_acceptances(state) == 0  # the log is empty now
        statuses = {r[0] for r in state.db.execute("SELECT status FROM deliveries")}
    assert statuses == {"sent"} and log.read_bytes() == b""


def test_a_worker_tags_with_the_whole_taxonomy_only_when_a_tag_is_out_of_date(
    project: Project,
) -> None:
    assert project.run("send").returncode == 0  # picks up and tags the shipped items
    taxonomy = load_taxonomy(None)
    lexicon_free = type(taxonomy)(taxonomy.regions, taxonomy.topics, {}, {},
                                  fingerprint=taxonomy.fingerprint)  # fmt: skip
    loaded: list[bool] = []

    def full() -> object:
        loaded.append(True)
        return taxonomy

    with State(project.state) as state:
        kept = tagged_items(state, lexicon_free, full=full)  # type: ignore[arg-type]
        assert not loaded and kept == tagged_items(state, taxonomy)
        state.db.execute("UPDATE items SET tagged_with = 'older'")
        again = tagged_items(state, lexicon_free, full=full)  # type: ignore[arg-type]
    assert loaded == [True] and again == kept


def test_the_send_list_lays_the_webs_changes_over_the_file_as_a_preview_does(
    project: Project,
) -> None:
    _plain_list(project, 30)
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    with State(project.state) as state:
        web = WebChanges(state)
        web.unsubscribe("Reader3@example.org", "one-click", now)
        web.set_preferences("reader4@example.org", {"topics": ["Health"]}, "preferences", now)
        web.set_preferences("gone@example.org", {"topics": ["Health"]}, "preferences", now)
        nonce = web.sign_up("new@example.org", {"regions": ["Caribbean"]}, now, "127.0.0.1")
        web.confirm("new@example.org", now, "127.0.0.1", lambda pending, _: pending, nonce)
        web.set_preferences("reader8@example.org", {"order": "oldest"}, "preferences", now)
        # a bounce's suppression in the state, which the journal lost
        assert BounceRecords(state).suppress("reader7@example.org", "hard bounce", now, None)
    journal = suppressions.journal_path(project.state)
    suppressions.append(journal, "unsubscribe", "reader5@example.org", "bounce", now)
    settings = load_settings(project.root / "digest.yaml")
    taxonomy = load_taxonomy(None)
    expected = load_effective_subscribers(settings, taxonomy)
    with SendList.build(settings.subscribers, taxonomy, settings.state) as send_list:
        listed = list(send_list.read())
    assert sorted(listed, key=lambda s: s.email) == sorted(expected, key=lambda s: s.email)
    emails = {s.email for s in listed}
    assert "new@example.org" in emails and len(emails) == 28  # 30 - 3 + 1
    orders = {s.email: s.order for s in listed}
    assert orders["reader6@example.org"] == orders["reader8@example.org"] == "oldest"
    assert orders["reader9@example.org"] == "newest"
    assert next(s for s in listed if s.email == "reader4@example.org").topics == ("Health",)
