"""Subscriber changes made on the web, kept in the SQLite state, and the merge with the file.

`subscribers.yaml` stays the staff's file. What subscribers do on the web (change a setting,
unsubscribe, resubscribe, sign up and confirm) is stored in the state beside the deliveries,
and `effective_subscribers` lays it over the file:

- a setting changed on the web wins over the file's value for that setting;
- an unsubscribe always wins, whatever the file says, until the subscriber resubscribes;
- a confirmed web sign-up is added; an unconfirmed one never receives anything.

Addresses are matched case-insensitively, as `subscribers.yaml` does. Every change is also
written to `web_events` (time, action, where it came from) so an opt-out can be shown later.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .models import Subscriber
from .state import State, parse_stamp, stamp
from .subscribers import FREQUENCIES, GROUPINGS
from .taxonomy import Taxonomy
from .yamlfile import LineDict, YamlSyntaxError, read_yaml

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_subscribers (
    key TEXT PRIMARY KEY,              -- the address, casefolded
    email TEXT NOT NULL,               -- the address as the subscriber wrote it
    prefs TEXT NOT NULL DEFAULT '{}',  -- settings changed on the web, JSON {"regions": [...]}
    pending TEXT,                      -- a sign-up's settings, waiting for its confirmation
    pending_at TEXT,
    confirmed_at TEXT,                 -- set: the address proved it wants the digest
    unsubscribed_at TEXT,              -- set: nothing is sent, whatever the file says
    unsubscribed_via TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS web_events (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,   -- signup | confirm | preferences | unsubscribe | resubscribe
    via TEXT NOT NULL,      -- one-click | unsubscribe-page | preferences | signup | confirm-page
    client TEXT,            -- the client's address, kept for sign-up and confirmation only
    detail TEXT
);
CREATE INDEX IF NOT EXISTS web_events_by_key ON web_events(key, id);
"""

SETTINGS = ("name", "regions", "topics", "group_by", "frequency", "timezone")
_DEFAULT = Subscriber(email="default@example.org")


def address_key(email: str) -> str:
    return email.strip().casefold()


@dataclass(frozen=True)
class WebRecord:
    """What the web holds for one address."""

    email: str
    prefs: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, Any] | None = None
    pending_at: datetime | None = None
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    unsubscribed_via: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class WebEvent:
    at: datetime
    action: str
    via: str
    client: str | None
    detail: str | None


def _time(value: str | None) -> datetime | None:
    return parse_stamp(value) if value else None


def _record(row: sqlite3.Row) -> WebRecord:
    return WebRecord(
        email=row["email"],
        prefs=json.loads(row["prefs"] or "{}"),
        pending=json.loads(row["pending"]) if row["pending"] else None,
        pending_at=_time(row["pending_at"]),
        confirmed_at=_time(row["confirmed_at"]),
        unsubscribed_at=_time(row["unsubscribed_at"]),
        unsubscribed_via=row["unsubscribed_via"],
        created_at=_time(row["created_at"]),
    )


class Overrides:
    """The web's subscriber tables in one open state. Creates them unless the state is
    read-only; a read-only state made before the web existed simply has no changes."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.db = state.db
        if not state.readonly:
            self.db.executescript(SCHEMA)
            self.present = True
        else:
            self.present = (
                self.db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'web_subscribers'"
                ).fetchone()
                is not None
            )

    # -- reading ------------------------------------------------------------------------------
    def record(self, email: str) -> WebRecord | None:
        if not self.present:
            return None
        row = self.db.execute(
            "SELECT * FROM web_subscribers WHERE key = ?", (address_key(email),)
        ).fetchone()
        return _record(row) if row else None

    def records(self) -> dict[str, WebRecord]:
        """Every address the web knows, keyed by the casefolded address, oldest first."""
        if not self.present:
            return {}
        rows = self.db.execute("SELECT * FROM web_subscribers ORDER BY created_at, key")
        return {row["key"]: _record(row) for row in rows}

    def events(self, email: str) -> list[WebEvent]:
        if not self.present:
            return []
        rows = self.db.execute(
            "SELECT * FROM web_events WHERE key = ? ORDER BY id", (address_key(email),)
        )
        return [
            WebEvent(parse_stamp(r["at"]), r["action"], r["via"], r["client"], r["detail"])
            for r in rows
        ]

    # -- changing -----------------------------------------------------------------------------
    def _ensure(self, email: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO web_subscribers(key, email, created_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO NOTHING",
            (address_key(email), email.strip(), stamp(now), stamp(now)),
        )

    def _event(
        self,
        email: str,
        action: str,
        via: str,
        now: datetime,
        client: str | None = None,
        detail: Any = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO web_events(key, at, action, via, client, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                address_key(email),
                stamp(now),
                action,
                via,
                client,
                json.dumps(detail, ensure_ascii=False) if detail is not None else None,
            ),
        )

    def unsubscribe(self, email: str, via: str, now: datetime) -> bool:
        """Stop every digest to this address. Idempotent: False when it was already so."""
        with self.state.transaction():
            current = self.record(email)
            if current is not None and current.unsubscribed_at is not None:
                return False
            self._ensure(email, now)
            self.db.execute(
                "UPDATE web_subscribers SET unsubscribed_at = ?, unsubscribed_via = ?, "
                "updated_at = ? WHERE key = ?",
                (stamp(now), via, stamp(now), address_key(email)),
            )
            self._event(email, "unsubscribe", via, now)
        return True

    def resubscribe(self, email: str, via: str, now: datetime, in_file: bool) -> bool:
        """Undo an unsubscribe. The link that asked for it proved the address is theirs, so an
        address not in the file becomes a confirmed web subscriber. False when they already
        receive the digest."""
        with self.state.transaction():
            current = self.record(email)
            unsubscribed = current is not None and current.unsubscribed_at is not None
            confirmed = current is not None and current.confirmed_at is not None
            if not unsubscribed and (in_file or confirmed):
                return False
            self._ensure(email, now)
            self.db.execute(
                "UPDATE web_subscribers SET unsubscribed_at = NULL, unsubscribed_via = NULL, "
                "confirmed_at = COALESCE(confirmed_at, ?), updated_at = ? WHERE key = ?",
                (stamp(now), stamp(now), address_key(email)),
            )
            self._event(email, "resubscribe", via, now)
        return True

    def set_preferences(self, email: str, prefs: dict[str, Any], via: str, now: datetime) -> None:
        """Replace the settings changed on the web (see `web_changes` for what to pass)."""
        clean = {k: v for k, v in prefs.items() if k in SETTINGS}
        with self.state.transaction():
            self._ensure(email, now)
            self.db.execute(
                "UPDATE web_subscribers SET prefs = ?, updated_at = ? WHERE key = ?",
                (json.dumps(clean, ensure_ascii=False), stamp(now), address_key(email)),
            )
            self._event(email, "preferences", via, now, detail=clean)

    def sign_up(self, email: str, details: dict[str, Any], now: datetime, client: str) -> None:
        """Keep a sign-up's settings until the address confirms; a second sign-up of the same
        address replaces the first one's (one row per address, never two subscribers)."""
        clean = {k: v for k, v in details.items() if k in SETTINGS}
        with self.state.transaction():
            self._ensure(email, now)
            self.db.execute(
                "UPDATE web_subscribers SET pending = ?, pending_at = ?, updated_at = ? "
                "WHERE key = ?",
                (json.dumps(clean, ensure_ascii=False), stamp(now), stamp(now), address_key(email)),
            )
            self._event(email, "signup", "signup", now, client=client, detail=clean)

    def confirm(
        self, email: str, now: datetime, client: str, file_subscriber: Subscriber | None
    ) -> bool:
        """Apply the waiting sign-up: its settings become the web's (only those that differ
        from the file for someone already in it), any unsubscribe is lifted. False when
        nothing was waiting."""
        with self.state.transaction():
            current = self.record(email)
            if current is None or current.pending is None:
                return False
            prefs = web_changes(file_subscriber, current.pending, current.prefs)
            self.db.execute(
                "UPDATE web_subscribers SET prefs = ?, pending = NULL, pending_at = NULL, "
                "confirmed_at = COALESCE(confirmed_at, ?), unsubscribed_at = NULL, "
                "unsubscribed_via = NULL, updated_at = ? WHERE key = ?",
                (
                    json.dumps(prefs, ensure_ascii=False),
                    stamp(now),
                    stamp(now),
                    address_key(email),
                ),
            )
            self._event(email, "confirm", "confirm-page", now, client=client, detail=prefs)
        return True


def web_changes(
    file_subscriber: Subscriber | None, wanted: dict[str, Any], current: dict[str, Any]
) -> dict[str, Any]:
    """The settings to keep as web changes when a subscriber asks for `wanted`: for someone in
    the file only those that differ from it (so the staff's later edits to the others still
    apply); for a web subscriber all of them."""
    merged = {**current, **{k: v for k, v in wanted.items() if k in SETTINGS}}
    if file_subscriber is None:
        return merged
    from_file = subscriber_settings(file_subscriber)
    return {k: v for k, v in merged.items() if from_file.get(k) != _comparable(k, v)}


def _comparable(key: str, value: Any) -> Any:
    return list(value) if key in ("regions", "topics") and value is not None else value


def subscriber_settings(subscriber: Subscriber) -> dict[str, Any]:
    """A subscriber's settings in the form the web stores them."""
    return {
        "name": subscriber.name,
        "regions": list(subscriber.regions),
        "topics": list(subscriber.topics),
        "group_by": subscriber.group_by,
        "frequency": subscriber.frequency,
        "timezone": subscriber.timezone,
    }


# -- the merge ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Effective:
    """One address as a send sees it, and where each of its settings came from."""

    subscriber: Subscriber
    # active | unsubscribed | pending (a web sign-up not confirmed yet) | inactive (neither in
    # the file nor confirmed on the web, e.g. removed from the file after changing a setting)
    status: str
    origin: str  # file | web
    sources: dict[str, str]  # setting -> file | web | default
    record: WebRecord | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


def _valid_setting(key: str, value: Any, taxonomy: Taxonomy) -> Any:
    """The value to use, or None when the stored one no longer fits (a renamed region, a
    timezone gone): the file's value then stays, rather than a list silently meaning "all"."""
    if key == "name":
        ok = isinstance(value, str) and "\n" not in value and "\r" not in value
        return value.strip() if ok else None
    if key in ("regions", "topics"):
        known = taxonomy.regions if key == "regions" else taxonomy.topics
        if not isinstance(value, list):
            return None
        kept = tuple(v for v in value if v in known)
        return kept if kept or not value else None
    if key == "group_by":
        return value if value in GROUPINGS else None
    if key == "frequency":
        return value if value in FREQUENCIES else None
    if key == "timezone":
        if value is None or value == "":
            return ""  # the office default, chosen on the web
        try:
            ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            return None
        return str(value)
    return None


def _apply(
    base: Subscriber, prefs: dict[str, Any], taxonomy: Taxonomy, sources: dict[str, str]
) -> tuple[Subscriber, dict[str, str]]:
    changes: dict[str, Any] = {}
    sources = dict(sources)
    for key in SETTINGS:
        if key not in prefs:
            continue
        value = _valid_setting(key, prefs[key], taxonomy)
        if value is None:
            continue
        changes[key] = (value or None) if key == "timezone" else value
        sources[key] = "web"
    return replace(base, **changes), sources


def _file_sources(subscriber: Subscriber, written: set[str] | None) -> dict[str, str]:
    if written is not None:
        return {k: "file" if k in written else "default" for k in SETTINGS}
    defaults = subscriber_settings(_DEFAULT)
    mine = subscriber_settings(subscriber)
    return {k: "file" if mine[k] != defaults[k] else "default" for k in SETTINGS}


def describe(
    file_subscribers: Iterable[Subscriber],
    state: State | None,
    taxonomy: Taxonomy,
    written: dict[str, set[str]] | None = None,
    only: str | None = None,
) -> list[Effective]:
    """Every address the file or the web knows (or just `only`, a casefolded address), in file
    order then by first web contact.

    `written` (from `written_settings`) says which settings the file spells out; without it a
    setting equal to the built-in default is reported as "default"."""
    overrides = Overrides(state) if state is not None else None
    if overrides is None:
        records: dict[str, WebRecord] = {}
    elif only is not None:
        record = overrides.record(only)
        records = {only: record} if record else {}
    else:
        records = overrides.records()
    result: list[Effective] = []
    in_file: set[str] = set()
    for subscriber in file_subscribers:
        key = address_key(subscriber.email)
        if only is not None and key != only:
            continue
        in_file.add(key)
        record = records.get(key)
        sources = _file_sources(subscriber, written.get(key) if written is not None else None)
        merged, sources = _apply(subscriber, record.prefs if record else {}, taxonomy, sources)
        status = "unsubscribed" if record and record.unsubscribed_at else "active"
        result.append(Effective(merged, status, "file", sources, record))
    for key, record in records.items():
        if key in in_file:
            continue
        if record.unsubscribed_at is not None:
            status = "unsubscribed"
        elif record.confirmed_at is not None:
            status = "active"
        elif record.pending is not None:
            status = "pending"
        else:  # changed settings once, then left the file
            status = "inactive"
        prefs = record.prefs if record.confirmed_at is not None else (record.pending or {})
        base = Subscriber(email=record.email)
        merged, sources = _apply(base, prefs, taxonomy, dict.fromkeys(SETTINGS, "default"))
        result.append(Effective(merged, status, "web", sources, record))
    return result


def effective_subscribers(
    file_subscribers: Iterable[Subscriber], state: State | None, taxonomy: Taxonomy
) -> Iterator[Subscriber]:
    """The subscribers a send delivers to: the file with the web's changes laid over it, one at
    a time. Those the web never touched (nearly all, on a large list) pass through as they are
    read; the few it did come last, changed, with the web's own sign-ups."""
    records = Overrides(state).records() if state is not None else {}
    touched = []
    for subscriber in file_subscribers:
        if address_key(subscriber.email) in records:
            touched.append(subscriber)
        else:
            yield subscriber
    if records:
        yield from (e.subscriber for e in describe(touched, state, taxonomy) if e.active)


def with_web_changes(
    file_subscribers: Iterable[Subscriber], state_file: Path, taxonomy: Taxonomy
) -> Iterator[Subscriber]:
    """`effective_subscribers` with the state file opened read-only while they are read: a
    preview or a send being checked must never write the state (nor create it)."""
    state = State.open_readonly(state_file)
    try:
        yield from effective_subscribers(file_subscribers, state, taxonomy)
    finally:
        if state is not None:
            state.close()


def written_settings(path: Path) -> dict[str, set[str]]:
    """Which settings each subscriber's entry in the file spells out (by casefolded address)."""
    try:
        data = read_yaml(path)
    except (OSError, YamlSyntaxError):
        return {}
    entries = data.get("subscribers") if isinstance(data, LineDict) else None
    result: dict[str, set[str]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("email"), str):
            result[address_key(entry["email"])] = {k for k in entry if k in SETTINGS}
    return result


# -- export -------------------------------------------------------------------------------------
class _FlowList(list):  # type: ignore[type-arg]
    """Written as `[a, b]`, the way staff write regions and topics."""


def subscribers_yaml(subscribers: Iterable[Subscriber], note: str = "") -> str:
    """A `subscribers.yaml` holding these subscribers, writing only what differs from the
    defaults; `parse_subscribers` reads it back to the same subscribers."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(
        _FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
    )
    entries = []
    for s in subscribers:
        entry: dict[str, Any] = {"email": s.email}
        if s.name:
            entry["name"] = s.name
        if s.regions:
            entry["regions"] = _FlowList(s.regions)
        if s.topics:
            entry["topics"] = _FlowList(s.topics)
        if s.group_by != _DEFAULT.group_by:
            entry["group_by"] = s.group_by
        if s.frequency != _DEFAULT.frequency:
            entry["frequency"] = s.frequency
        if s.timezone:
            entry["timezone"] = s.timezone
        entries.append(entry)
    body = yaml.dump(
        {"subscribers": entries},
        Dumper=Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    header = "".join(f"# {line}\n" for line in note.splitlines())
    return header + body
