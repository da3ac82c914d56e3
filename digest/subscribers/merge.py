"""The subscribers a send sees: subscribers.yaml with the changes made on the web laid over it.

`subscribers.yaml` stays the staff's file. What subscribers do on the web (change a setting,
unsubscribe, resubscribe, sign up and confirm) is stored in the state (`state.WebChanges`),
and `effective_subscribers` lays it over the file:

- a setting changed on the web wins over the file's value for that setting;
- an unsubscribe always wins, whatever the file says, until the subscriber resubscribes;
- a confirmed web sign-up is added; an unconfirmed one never receives anything;
- a suppressed address (its mail bounced: `digest bounces`) receives nothing until staff lift
  it (`digest subscribers unsuppress`) or it confirms a new sign-up.

Addresses are matched case-insensitively, as `subscribers.yaml` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from ..models import Subscriber, address_key
from ..settings import Settings, StateLocation
from ..state import BounceRecords, State, Suppression, WebChanges, WebRecord, reading, suppressions
from ..taxonomy import Taxonomy
from .fields import DEFAULT, LISTS, SETTINGS, stored_setting, subscriber_settings
from .file import load_subscribers


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
    return list(value) if key in LISTS and value is not None else value


# -- the merge ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MergedSubscriber:
    """One address as a send sees it, and where each of its settings came from."""

    subscriber: Subscriber
    # active | unsubscribed | suppressed (bounced) | pending (a web sign-up not confirmed
    # yet) | inactive (neither in the file nor confirmed on the web, e.g. removed from the file
    # after changing a setting)
    status: str
    origin: str  # file | web
    sources: dict[str, str]  # setting -> file | web | default
    record: WebRecord | None = None
    suppression: Suppression | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def why(self) -> str:
        """Why the status is what it is, for staff: "suppressed: hard bounce 5.1.1 on ..."."""
        record = self.record
        if self.status == "unsubscribed" and record and record.unsubscribed_at:
            via = f" ({record.unsubscribed_via})" if record.unsubscribed_via else ""
            return f"unsubscribed{via} on {record.unsubscribed_at:%Y-%m-%d}"
        if self.status == "suppressed" and self.suppression is not None:
            return f"suppressed: {self.suppression.reason}"
        if self.status == "pending" and record and record.pending_at:
            return f"signed up on {record.pending_at:%Y-%m-%d}, not confirmed yet"
        if self.status == "inactive":
            return "not in the file and not signed up on the web"
        return self.status


def _apply(
    base: Subscriber, prefs: dict[str, Any], taxonomy: Taxonomy, sources: dict[str, str]
) -> tuple[Subscriber, dict[str, str]]:
    changes: dict[str, Any] = {}
    sources = dict(sources)
    known = {"regions": taxonomy.regions, "topics": taxonomy.topics}
    for key in SETTINGS:
        if key not in prefs:
            continue
        value = stored_setting(key, prefs[key], known)
        if value is None:
            continue
        changes[key] = (value or None) if key == "timezone" else value
        sources[key] = "web"
    return replace(base, **changes), sources


def _file_sources(subscriber: Subscriber, written: set[str] | None) -> dict[str, str]:
    if written is not None:
        return {k: "file" if k in written else "default" for k in SETTINGS}
    defaults = subscriber_settings(DEFAULT)
    mine = subscriber_settings(subscriber)
    return {k: "file" if mine[k] != defaults[k] else "default" for k in SETTINGS}


def merged_view(
    file_subscribers: Iterable[Subscriber],
    state: State | None,
    taxonomy: Taxonomy,
    written: dict[str, set[str]] | None = None,
    only: str | None = None,
) -> list[MergedSubscriber]:
    """Every address the file or the web knows (or just `only`, a casefolded address), in file
    order then by first web contact.

    `written` (from `written_settings`) says which settings the file spells out; without it a
    setting equal to the built-in default is reported as "default"."""
    changes = WebChanges(state) if state is not None else None
    stopped: dict[str, Suppression] = {}
    if changes is None:
        records: dict[str, WebRecord] = {}
    elif only is not None:
        record = changes.record(only)
        records = {only: record} if record else {}
        found = BounceRecords(changes.state).suppression(only)
        stopped = {only: found} if found else {}
    else:
        records = changes.records()
        stopped = BounceRecords(changes.state).suppressed()
    result: list[MergedSubscriber] = []
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
        if status == "active" and key in stopped:
            status = "suppressed"
        result.append(MergedSubscriber(merged, status, "file", sources, record, stopped.get(key)))
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
        if status == "active" and key in stopped:
            status = "suppressed"
        prefs = record.prefs if record.confirmed_at is not None else (record.pending or {})
        base = Subscriber(email=record.email)
        merged, sources = _apply(base, prefs, taxonomy, dict.fromkeys(SETTINGS, "default"))
        result.append(MergedSubscriber(merged, status, "web", sources, record, stopped.get(key)))
    return result


def effective_subscribers(
    file_subscribers: Iterable[Subscriber],
    state: State | None,
    taxonomy: Taxonomy,
    suppressed: frozenset[str] = frozenset(),
) -> Iterator[Subscriber]:
    """The subscribers a send delivers to: the file with the web's changes laid over it, one at
    a time, leaving out the `suppressed` addresses (casefolded: the suppression journal's).
    Those the web never touched (nearly all, on a large list) pass through as they are read;
    the few it did come last, changed, with the web's own sign-ups."""
    records = WebChanges(state).records() if state is not None else {}
    if state is not None:  # the state's suppressions too, should the journal have lost one
        suppressed = suppressed | frozenset(BounceRecords(state).suppressed())
    touched = []
    for subscriber in file_subscribers:
        key = address_key(subscriber.email)
        if key in suppressed:
            continue
        if key in records:
            touched.append(subscriber)
        else:
            yield subscriber
    if records:
        merged = merged_view(touched, state, taxonomy)
        yield from (
            e.subscriber
            for e in merged
            if e.active and address_key(e.subscriber.email) not in suppressed
        )


def with_web_changes(
    file_subscribers: Iterable[Subscriber], state_file: StateLocation, taxonomy: Taxonomy
) -> Iterator[Subscriber]:
    """`effective_subscribers` with the state file opened read-only while they are read (a
    preview or a send being checked must never write the state, nor create it), and the
    suppression journal beside it honoured even when the state is lost."""
    suppressed = suppressions.suppressed(suppressions.journal_path(state_file))
    with reading(state_file) as state:
        if state is not None and state.shared:  # every host's lines, in the database
            suppressed = suppressions.suppressed(suppressions.journal_of(state))
        yield from effective_subscribers(file_subscribers, state, taxonomy, suppressed)


def load_effective_subscribers(settings: Settings, taxonomy: Taxonomy) -> list[Subscriber]:
    """subscribers.yaml checked, with the changes subscribers made on the web laid over it
    (unsubscribes win); the state is only read."""
    return list(
        with_web_changes(load_subscribers(settings.subscribers, taxonomy), settings.state, taxonomy)
    )
