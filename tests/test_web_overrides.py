"""Web changes in the state (SQLite and PostgreSQL) laid over subscribers.yaml (`digest.subscribers.merge`), the
`digest subscribers` listing and export, and the in-memory rate limit's window."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.models import Subscriber
from digest.send import load_inputs
from digest.settings import load_settings
from digest.state import State, WebChanges, reading
from digest.subscribers import effective_subscribers, load_subscribers, merged_view, web_changes
from digest.subscribers.fields import subscriber_settings
from digest.taxonomy import Taxonomy, load_taxonomy
from digest.web.ratelimit import SlidingWindow

from .conftest import Project

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ANA = Subscriber(
    email="ana@example.org",
    name="Ana Pérez",
    regions=("Central America",),
    topics=("Labour migration",),
)
BEA = Subscriber(email="bea@example.org", name="Bea")


def KEEP_SIGN_UP(pending: dict, prefs: dict) -> dict:  # noqa: N802 - a constant's role
    return web_changes(None, pending, prefs)


@pytest.fixture
def taxonomy() -> Taxonomy:
    return load_taxonomy(None)


@pytest.fixture
def state(state_location: Any) -> Iterator[State]:
    with State(state_location) as opened:
        yield opened


def _form(subscriber: Subscriber, **changes: object) -> dict[str, object]:
    """What the preference form sends: every setting."""
    return {**subscriber_settings(subscriber), **changes}


def test_a_web_change_wins_for_its_setting_and_the_file_still_rules_the_others(
    state: State, taxonomy: Taxonomy
) -> None:
    overrides = WebChanges(state)
    wanted = _form(ANA, regions=["Caribbean"])
    stored = web_changes(ANA, wanted, {})
    assert stored == {"regions": ["Caribbean"]}  # unchanged settings are not taken over
    overrides.set_preferences(ANA.email, stored, "preferences", NOW)

    # The staff later change Ana's topics and grouping in the file.
    edited = Subscriber(
        email="ANA@example.org",
        name="Ana",
        regions=("North America",),
        topics=("Health",),
        group_by="topic",
    )
    (ana,) = list(effective_subscribers([edited], state, taxonomy))
    assert (ana.regions, ana.topics, ana.group_by, ana.name) == (
        ("Caribbean",),
        ("Health",),
        "topic",
        "Ana",
    )
    (entry,) = merged_view([edited], state, taxonomy)
    assert entry.sources["regions"] == "web" and entry.sources["topics"] == "file"

    # Setting it back to the file's value drops the web change.
    overrides.set_preferences(
        ANA.email,
        web_changes(edited, _form(edited), overrides.record(ANA.email).prefs),
        "preferences",
        NOW,
    )
    assert overrides.record(ANA.email).prefs == {}
    assert list(effective_subscribers([edited], state, taxonomy)) == [edited]


def test_an_unsubscribe_wins_whatever_the_file_says_until_a_resubscribe(
    state: State, taxonomy: Taxonomy
) -> None:
    overrides = WebChanges(state)
    assert overrides.unsubscribe("Ana@Example.org", "one-click", NOW) is True
    assert overrides.unsubscribe("ana@example.org", "one-click", NOW) is False  # idempotent
    assert list(effective_subscribers([ANA, BEA], state, taxonomy)) == [BEA]
    rewritten = Subscriber(email="ana@example.org", regions=("Caribbean",))
    assert list(effective_subscribers([rewritten, BEA], state, taxonomy)) == [BEA]
    record = overrides.record(ANA.email)
    assert record.unsubscribed_at == NOW and record.unsubscribed_via == "one-click"
    assert [(e.action, e.via) for e in overrides.events(ANA.email)] == [
        ("unsubscribe", "one-click")
    ]

    later = NOW + timedelta(days=1)
    assert overrides.resubscribe(ANA.email, "preferences", later, in_file=True) is True
    assert overrides.resubscribe(ANA.email, "preferences", later, in_file=True) is False
    # those the web touched come after the others
    assert list(effective_subscribers([ANA, BEA], state, taxonomy)) == [BEA, ANA]


def test_unconfirmed_sign_ups_never_receive_and_confirmed_ones_are_added(
    state: State, taxonomy: Taxonomy
) -> None:
    overrides = WebChanges(state)
    details = _form(Subscriber(email="x@example.org", name="Nuevo"), regions=["Caribbean"])
    sign_up = overrides.sign_up("Nuevo@Example.org", details, NOW, client="127.0.0.1")
    assert list(effective_subscribers([BEA], state, taxonomy)) == [BEA]
    statuses = [
        (e.subscriber.email, e.status, e.origin) for e in merged_view([BEA], state, taxonomy)
    ]
    assert statuses == [
        ("bea@example.org", "active", "file"),
        ("Nuevo@Example.org", "pending", "web"),
    ]

    confirm = overrides.confirm
    assert confirm("nuevo@example.org", NOW, "127.0.0.1", KEEP_SIGN_UP, sign_up) == "confirmed"
    assert confirm("nuevo@example.org", NOW, "127.0.0.1", KEEP_SIGN_UP, sign_up) == (
        "nothing waiting"
    )
    new = list(effective_subscribers([BEA], state, taxonomy))[1]
    assert (new.email, new.name, new.regions, new.topics) == (
        "Nuevo@Example.org",
        "Nuevo",
        ("Caribbean",),
        (),
    )
    # A second sign-up waits for its own confirmation: the current settings stay.
    again = overrides.sign_up(
        "nuevo@example.org", details | {"regions": ["Rest of the world"]}, NOW, "x"
    )
    assert list(effective_subscribers([BEA], state, taxonomy))[1].regions == ("Caribbean",)
    assert len(overrides.records()) == 1
    assert confirm("nuevo@example.org", NOW, "127.0.0.1", KEEP_SIGN_UP, again) == "confirmed"
    assert list(effective_subscribers([BEA], state, taxonomy))[1].regions == ("Rest of the world",)
    assert [e.client for e in overrides.events("nuevo@example.org")] == [
        "127.0.0.1",
        "127.0.0.1",
        "x",
        "127.0.0.1",
    ]


def test_stored_names_the_taxonomy_no_longer_knows_fall_back_to_the_file(
    state: State, taxonomy: Taxonomy
) -> None:
    overrides = WebChanges(state)
    overrides.set_preferences(
        ANA.email,
        {
            "regions": ["Atlantis"],
            "topics": ["Atlantis", "Health"],
            "timezone": "Mars/Olympus",
            "group_by": "colour",
        },
        "preferences",
        NOW,
    )
    (entry,) = merged_view([ANA], state, taxonomy)
    assert entry.subscriber.regions == ANA.regions  # never an empty list meaning "all"
    assert entry.subscriber.topics == ("Health",)
    assert entry.subscriber.timezone is None and entry.subscriber.group_by == "region"
    assert entry.sources["regions"] == "file"
    assert entry.sources["topics"] == "web"


def test_an_address_that_left_the_file_after_a_web_change_is_not_sent_to(
    state: State, taxonomy: Taxonomy
) -> None:
    WebChanges(state).set_preferences("left@example.org", {"topics": ["Health"]}, "x", NOW)
    assert list(effective_subscribers([BEA], state, taxonomy)) == [BEA]
    assert [e.status for e in merged_view([BEA], state, taxonomy)] == ["active", "inactive"]


def test_a_state_from_before_the_web_is_read_as_it_is(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = tmp_path / "state.db"
    State(path).close()
    with sqlite3.connect(path) as db:  # as a version from before the web left it
        db.executescript("DROP TABLE web_events; DROP TABLE web_subscribers;")
    with reading(path) as readonly:
        assert readonly is not None
        assert list(effective_subscribers([ANA], readonly, taxonomy)) == [ANA]
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "web_subscribers" not in tables


def _digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def test_load_inputs_applies_web_changes_and_never_writes_the_state(project: Project) -> None:
    settings = load_settings(project.config)
    inputs = load_inputs(settings)  # no state yet: the file as it is, and no state made
    assert not settings.state.exists()
    assert "ana@example.org" in [s.email for s in inputs.subscribers]

    with State(settings.state) as state:
        WebChanges(state).unsubscribe("ana@example.org", "one-click", NOW)
        WebChanges(state).set_preferences("newsroom@example.org", {"group_by": "topic"}, "x", NOW)
    before = _digest_of(settings.state)
    emails = {s.email: s for s in load_inputs(settings).subscribers}
    assert "ana@example.org" not in emails
    assert emails["newsroom@example.org"].group_by == "topic"
    # SQLite may open an empty write-ahead log beside it, but nothing is written.
    assert _digest_of(settings.state) == before
    wal = Path(f"{settings.state}-wal")
    assert not wal.exists() or wal.stat().st_size == 0


# -- the command line --------------------------------------------------------------------------
def _seed_web_changes(project: Project) -> None:
    with State(project.state_location) as state:
        overrides = WebChanges(state)
        overrides.unsubscribe("jean-baptiste@example.org", "one-click", NOW)
        overrides.set_preferences(
            "ana@example.org", {"regions": ["Caribbean"], "frequency": "monthly"}, "web", NOW
        )
        sign_up = overrides.sign_up(
            "web.reader@example.org", {"name": "Web Reader", "topics": ["Health"]}, NOW, "127.0.0.1"
        )
        overrides.confirm("web.reader@example.org", NOW, "127.0.0.1", KEEP_SIGN_UP, sign_up)
        overrides.sign_up("pending@example.org", {"name": "Not Yet"}, NOW, "127.0.0.1")


def test_subscribers_lists_the_effective_ones_and_where_each_setting_came_from(
    any_project: Project,
) -> None:
    project = any_project
    _seed_web_changes(project)
    listed = json.loads(project.run("subscribers", "--json", check=True).stdout)
    emails = [e["email"] for e in listed]
    assert "jean-baptiste@example.org" not in emails and "pending@example.org" not in emails
    assert emails[-1] == "web.reader@example.org"
    ana = next(e for e in listed if e["email"] == "ana@example.org")
    assert ana["regions"] == ["Caribbean"] and ana["frequency"] == "monthly"
    assert ana["sources"] == {
        "name": "file",
        "regions": "web",
        "topics": "file",
        "group_by": "file",
        "order": "default",
        "frequency": "web",
        "timezone": "default",
        "language": "default",
        "item_languages": "default",
    }
    everyone = json.loads(project.run("subscribers", "--all", "--json", check=True).stdout)
    statuses = {e["email"]: e["status"] for e in everyone}
    assert statuses["jean-baptiste@example.org"] == "unsubscribed"
    assert statuses["pending@example.org"] == "pending"

    table = project.run("subscribers", check=True).stdout
    assert "Caribbean (web)" in table and "monthly (web)" in table
    assert "weekly (default)" in table
    assert re.search(r"web\.reader@example\.org\s+│ web\s+│ active", table)


def test_export_writes_an_up_to_date_file_that_sends_the_same(any_project: Project) -> None:
    project = any_project
    _seed_web_changes(project)
    original = (project.root / "subscribers.yaml").read_text()
    before = json.loads(project.run("send", "--dry-run", "--json", check=True).stdout)
    result = project.run("subscribers", "export", check=True)
    assert "Wrote 7 subscriber(s)" in result.stdout
    assert (project.root / "subscribers.yaml.bak").read_text() == original
    written = (project.root / "subscribers.yaml").read_text()
    assert written.startswith("# Exported by `digest subscribers export`")
    assert "regions: [Caribbean]" in written and "jean-baptiste" not in written

    taxonomy = load_taxonomy(None)
    exported = load_subscribers(project.root / "subscribers.yaml", taxonomy)
    expected = load_inputs(load_settings(project.config)).subscribers
    strip = sorted(
        (s.email, s.name, s.regions, s.topics, s.group_by, s.frequency, s.timezone)
        for s in exported
    )
    assert strip == sorted(
        (s.email, s.name, s.regions, s.topics, s.group_by, s.frequency, s.timezone)
        for s in expected
    )
    after = json.loads(project.run("send", "--dry-run", "--json", check=True).stdout)
    recipients = [(s["email"], s["items"]) for s in before["subscribers"]]
    assert [(s["email"], s["items"]) for s in after["subscribers"]] == recipients

    printed = project.run("subscribers", "export", "--out", "-", check=True).stdout
    assert "web.reader@example.org" in printed


# -- the rate limit's window -------------------------------------------------------------------
def test_the_sliding_window_counts_per_key_and_says_how_long_to_wait() -> None:
    now = [1000.0]
    window = SlidingWindow(limit=2, period=60, clock=lambda: now[0], max_keys=3)
    assert window.hit("a") == 0 and window.hit("a") == 0
    assert window.hit("a") == pytest.approx(60)
    assert window.hit("b") == 0  # another key has its own count
    now[0] += 30
    assert window.hit("a") == pytest.approx(30)  # refused hits are not counted
    now[0] += 30.5
    assert window.hit("a") == 0
    for key in ("c", "d", "e"):
        window.hit(key)
    assert len(window.hits) <= 3  # idle keys are forgotten when the table is full
