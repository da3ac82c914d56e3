"""Recording classified mail in the state and acting on it: one batch, one transaction.

For each mail: skip it if its fingerprint was recorded (the same mail twice counts once),
attribute it (`attribution`), and for an attributed bounce, complaint or auto-reply add the
subscriber's event and apply the policy (`policy.decide`) to their events since their last
suppression was lifted: suppress (state + suppression journal), count, unsubscribe (a
complaint: `WebChanges.unsubscribe(via="complaint")`, the web's own path) or nothing.

Classifying is done before, outside any transaction; a batch holds the state's write lock
only while it writes. Complaints unsubscribe before the batch's transaction, so a crash in
between leaves them unsubscribed and the mail unrecorded (recorded next time), never the
mail recorded and the unsubscribe lost. A dry run reads the state (or none) and writes
nothing, keeping its own events in memory so its decisions match a real run's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..models import address_key
from ..state import BounceEventRecord, BounceRecords, State, WebChanges, suppressions
from ..state.bounce_records import journal_lines
from .attribution import Attribution, attribute
from .model import Classified, FailedRecipient
from .policy import Action, BounceEvent, Decision, decide, event_kind


@dataclass(frozen=True)
class Incoming:
    """One classified mail waiting to be recorded."""

    file: str
    fingerprint: str
    classified: Classified
    trusted: bool = False  # from a webhook whose signature was checked


@dataclass(frozen=True)
class Processed:
    """What became of one mail: `--json` prints `to_json()`."""

    file: str
    classified: Classified
    subscriber: str | None
    action: Action
    reason: str  # the policy's reason, or why nothing changed
    attributed_by: str = ""
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        c = self.classified
        return {
            "file": self.file,
            "kind": c.kind,
            "recipients": [_recipient_json(r) for r in c.recipients],
            "subscriber": self.subscriber,
            "action": self.action,
            "reason": self.reason,
            "classified_as": c.reason,
            "attributed_by": self.attributed_by or None,
            "duplicate": self.duplicate,
        }


def _recipient_json(r: FailedRecipient) -> dict[str, Any]:
    return {
        "address": r.address,
        "status": r.status,
        "code": r.code,
        "reason": r.reason,
        "hard": r.hard,
    }


@dataclass
class Policy:
    soft_limit: int = 3
    soft_window: timedelta = timedelta(days=30)


@dataclass
class BounceRecorder:
    """Records batches of classified mail in `state` (None or read-only when `dry_run`)."""

    state: State | None
    return_path: str | None
    secret: bytes | None
    policy: Policy
    clock: Callable[[], datetime]
    dry_run: bool = False
    _seen: set[str] = field(default_factory=set)  # a dry run's fingerprints
    _events: dict[str, list[BounceEvent]] = field(default_factory=dict)  # a dry run's events

    def __post_init__(self) -> None:
        self.records = BounceRecords(self.state) if self.state is not None else None

    def record(self, batch: Sequence[Incoming]) -> list[Processed]:
        """Record a batch and act on it; the results in the batch's order."""
        fresh = [m for m in batch if not self._known(m.fingerprint)]
        attributions = {id(m): self._attribute(m) for m in fresh}
        self._unsubscribe_complainants(fresh, attributions)
        if self.dry_run or self.state is None:
            return [self._one(m, attributions.get(id(m))) for m in batch]
        stopped: list[tuple[str, datetime]] = []
        with self.state.transaction():
            results = [self._one(m, attributions.get(id(m)), stopped) for m in batch]
            suppressions.append_all(self.records.journal, journal_lines(stopped))  # type: ignore[union-attr]
        return results

    def _known(self, fingerprint: str) -> bool:
        if fingerprint in self._seen:
            return True
        return self.records is not None and self.records.known(fingerprint)

    def _attribute(self, mail: Incoming) -> Attribution:
        return attribute(
            mail.classified, self.records, self.return_path, self.secret, trusted=mail.trusted
        )

    def _unsubscribe_complainants(
        self, fresh: Sequence[Incoming], attributions: dict[int, Attribution]
    ) -> None:
        """A complaint unsubscribes through the web's own path (its own transaction and
        journal line), before the batch records the mail."""
        if self.dry_run or self.state is None:
            return
        changes = WebChanges(self.state)
        for mail in fresh:
            who = attributions[id(mail)].subscriber
            if mail.classified.kind == "complaint" and who is not None:
                changes.unsubscribe(who, "complaint", self.clock())

    def _one(
        self,
        mail: Incoming,
        attribution: Attribution | None,
        stopped: list[tuple[str, datetime]] | None = None,
    ) -> Processed:
        c = mail.classified
        if attribution is None or mail.fingerprint in self._seen:
            return Processed(mail.file, c, None, "none", "processed before", duplicate=True)
        now = self.clock()
        who = attribution.subscriber
        kind = event_kind(c.kind, c.hard)
        if who is None or kind == "other":
            decision = Decision("none", attribution.why_not or _why_nothing(c))
        else:
            decision = self._decide(who, BounceEvent(kind, now, attribution.delivery_id, None), c)
        result = Processed(mail.file, c, who, decision.action, decision.reason, attribution.how)
        if self.dry_run or self.records is None:
            self._seen.add(mail.fingerprint)  # the same mail again in this dry run: once
            return result
        mail_id = self.records.add_mail(
            mail.fingerprint, c.kind, mail.file, now, who, decision.action, _details(result)
        )
        if mail_id is None:  # recorded meanwhile by another process
            return Processed(mail.file, c, None, "none", "processed before", duplicate=True)
        if who is not None and kind != "other":
            self.records.add_event(mail_id, _event_record(who, kind, now, attribution, c))
            if decision.action == "suppressed" and self.records.suppress(
                who, decision.reason, now, mail_id
            ):
                assert stopped is not None
                stopped.append((who, now))
        return result

    def _decide(self, who: str, event: BounceEvent, c: Classified) -> Decision:
        """The policy over the subscriber's events since their last suppression was lifted,
        the new one first (so it counts as the newest when two share a moment)."""
        first = _relevant_recipient(c, who)
        event = BounceEvent(
            event.kind, event.at, event.delivery_id, first.status if first else None
        )
        previous: list[BounceEvent] = []
        if self.records is not None:
            since = self.records.last_lifted(who)
            previous = [
                BounceEvent(e.kind, e.at, e.delivery_id, e.status)  # type: ignore[arg-type]
                for e in self.records.events(who, since)
            ]
        if self.dry_run:
            previous += self._events.setdefault(address_key(who), [])
            self._events[address_key(who)].append(event)
        return decide([event, *previous], event.at, self.policy.soft_limit, self.policy.soft_window)


def _relevant_recipient(c: Classified, who: str) -> FailedRecipient | None:
    """The failed recipient that is the subscriber, else the first hard one, else the first."""
    for r in c.recipients:
        if r.address and address_key(r.address) == address_key(who):
            return r
    return next((r for r in c.recipients if r.hard), c.recipients[0] if c.recipients else None)


def _event_record(
    who: str, kind: str, now: datetime, attribution: Attribution, c: Classified
) -> BounceEventRecord:
    first = _relevant_recipient(c, who)
    return BounceEventRecord(
        who,
        kind,
        now,
        attribution.delivery_id,
        first.status if first else None,
        first.code if first else None,
        (first.reason if first else c.reason)[:500] or None,
    )


def _why_nothing(c: Classified) -> str:
    if c.kind == "other":
        return f"not a bounce or complaint: {c.reason}"
    return f"{c.kind}: changes nothing"


def _details(result: Processed) -> dict[str, Any]:
    c = result.classified
    return {
        "recipients": [_recipient_json(r) for r in c.recipients],
        "classified_as": c.reason,
        "decision": result.reason,
        "attributed_by": result.attributed_by or None,
        "original_message_ids": list(c.original_message_ids[:5]),
        "complaint_recipient": c.complaint_recipient,
        "feedback_type": c.feedback_type,
    }
