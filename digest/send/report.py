"""What a run reports: what was picked up, and what became of each subscriber's digest."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import SourceError


@dataclass
class PickupReport:
    new: int = 0
    total: int = 0  # items read from the sources that were read
    files: int = 0
    problems: list[SourceError] = field(default_factory=list)
    unchanged: int = 0  # sources not read again: the same as when last read
    warnings: list[str] = field(default_factory=list)  # read, but something was wrong
    failed: list[str] = field(default_factory=list)  # sources that could not be read
    dropped: int = 0  # items tagged now that their source drops (require_topic, no topic)


@dataclass(frozen=True)
class Abort:
    """Why a run stopped before every subscriber was done, and the exit code that says who
    acts: 1, the next run (or the scheduler) tries again; 2, a person must fix something."""

    reason: str
    exit_code: int = 1


STOPPED = Abort("stopped before every subscriber was done")


@dataclass
class Outcome:
    email: str
    status: str  # sent | failed | uncertain | skipped | would-send | test
    items: int = 0
    size: int = 0
    message_id: str | None = None
    error: str | None = None
    attempts: int = 0


@dataclass
class SendReport:
    """Counts for every subscriber; the outcomes themselves for the first `KEPT_OUTCOMES` and
    for every failure, so a run of any size reports in bounded memory."""

    run_id: int | None
    pickup: PickupReport
    outcomes: list[Outcome] = field(default_factory=list)
    aborted: str | None = None
    abort_exit_code: int = 1
    warnings: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    failed: list[Outcome] = field(default_factory=list)
    total: int = 0
    # Over every message sent (or that would be): how many bytes and items, the most items.
    message_bytes: int = 0
    message_items: int = 0
    max_items: int = 0

    KEPT_OUTCOMES = 10_000

    def add(self, outcome: Outcome) -> None:
        self.total += 1
        self.counts[outcome.status] += 1
        if outcome.status in ("sent", "test", "would-send"):
            self.message_bytes += outcome.size
            self.message_items += outcome.items
            self.max_items = max(self.max_items, outcome.items)
        if outcome.status in ("failed", "uncertain"):
            self.failed.append(outcome)
        if len(self.outcomes) < self.KEPT_OUTCOMES:
            self.outcomes.append(outcome)

    def abort(self, abort: Abort | None) -> None:
        if abort is not None and self.aborted is None:
            self.aborted, self.abort_exit_code = abort.reason, abort.exit_code

    def warn(self, warning: str) -> None:
        if warning not in self.warnings:
            self.warnings.append(warning)

    def count(self, status: str) -> int:
        return self.counts[status]

    @property
    def ok(self) -> bool:
        return not self.failed and self.aborted is None

    def listed(self) -> list[Outcome]:
        """The outcomes kept for the report, and every failure."""
        kept = {id(o) for o in self.outcomes}
        return self.outcomes + [o for o in self.failed if id(o) not in kept]


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, outcome: Outcome) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, outcome: Outcome) -> None:
        pass
