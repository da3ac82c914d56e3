"""When each digest is due, and the long-running runner that sends it (APScheduler 3).

The schedule part is pure: every function takes `now`, so tests walk a fake clock across due
times, outages and clock changes. The crontab's meaning is `crontab`'s.

- `build_schedules(default, subscribers)`: the default schedule, plus one per distinct
  (frequency, timezone) of subscribers who set their own.
- `Schedule.next_fire(now)`, `Schedule.latest_due(now, catch_up)`, `Schedule.due_key(due)`.

`Runner` wires the schedules to APScheduler: a poll job every `poll_every`, one cron job per
schedule. Every send job does the same idempotent thing, `Runner.send_due(key)`: find the
latest due time within `catch_up`, and send it unless a finished run in the state already has
that due time. The jobs also run once on start, which is how a send missed while the process
was down goes out once (and a restart never repeats one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .bounces import IntakeReport, read_bounces
from .clock import utcnow
from .crontab import WallClockTrigger, crontab_fields, crontab_trigger, latest_fire
from .durations import format_duration
from .errors import DigestError, LockedError
from .models import Subscriber
from .send import PickupReport, SendReport, load_inputs, pick_up, send
from .settings import ScheduleSettings, Settings
from .state import State
from .subscribers import load_effective_subscribers
from .taxonomy import load_taxonomy

log = logging.getLogger("digest.scheduler")

DEFAULT_KEY = "default"
# A scheduled send waits this long for a manual one holding the send lock, then tries later.
LOCK_WAIT = 600.0
# Each attempt at the lock waits this long, so a stop request is noticed between attempts.
LOCK_STEP = 2.0
RETRY_AFTER = timedelta(minutes=10)

# -- schedules -----------------------------------------------------------------------------------


def cron_for(frequency: str, default_cron: str) -> str:
    """The crontab for a frequency: weekly is the default cron itself; daily and monthly keep
    its minute and hour, every day or on day 1."""
    if frequency == "weekly":
        return default_cron
    minute, hour, *_ = crontab_fields(default_cron)
    return f"{minute} {hour} * * *" if frequency == "daily" else f"{minute} {hour} 1 * *"


def schedule_key(subscriber: Subscriber, default: ScheduleSettings) -> str:
    """`default`, or `<frequency>:<timezone>` for a subscriber with their own schedule."""
    timezone = subscriber.timezone or default.timezone
    if subscriber.frequency == "weekly" and timezone == default.timezone:
        return DEFAULT_KEY
    return f"{subscriber.frequency}:{timezone}"


@dataclass(frozen=True)
class Schedule:
    key: str
    frequency: str
    cron: str
    timezone: str
    subscribers: tuple[str, ...]  # the addresses it sends to

    @cached_property
    def trigger(self) -> WallClockTrigger:
        return crontab_trigger(self.cron, self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def covers(self) -> str:
        if len(self.subscribers) == 1:
            return self.subscribers[0]
        return f"{len(self.subscribers)} subscribers"

    def next_fire(self, now: datetime) -> datetime | None:
        """The next send strictly after `now` (UTC)."""
        return self.trigger.next_fire(now + timedelta(microseconds=1))

    def latest_due(self, now: datetime, catch_up: timedelta) -> datetime | None:
        """The latest due time within `catch_up` before `now` (inclusive), or None."""
        return latest_fire(self.trigger, now, catch_up)

    def due_key(self, due: datetime) -> str:
        """What the state keeps for a due time: `default@2026-03-09T14:00:00Z`."""
        return f"{self.key}@{due.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def build_schedules(default: ScheduleSettings, subscribers: Iterable[Subscriber]) -> list[Schedule]:
    """The default schedule (always, first), then one per distinct (frequency, timezone) of
    subscribers who set their own, sorted by key. A subscriber with neither, or with weekly in
    the default timezone, is on the default schedule."""
    covered: dict[str, list[str]] = {DEFAULT_KEY: []}
    settings_of: dict[str, tuple[str, str]] = {DEFAULT_KEY: ("weekly", default.timezone)}
    for subscriber in subscribers:
        key = schedule_key(subscriber, default)
        covered.setdefault(key, []).append(subscriber.email)
        settings_of[key] = (subscriber.frequency, subscriber.timezone or default.timezone)
    schedules = []
    for key in [DEFAULT_KEY, *sorted(k for k in covered if k != DEFAULT_KEY)]:
        frequency, timezone = settings_of[key]
        schedules.append(
            Schedule(
                key=key,
                frequency=frequency,
                cron=cron_for(frequency, default.cron),
                timezone=timezone,
                subscribers=tuple(covered[key]),
            )
        )
    return schedules


def load_schedules(settings: Settings) -> list[Schedule]:
    """The schedules for the subscribers a send would see (the file with web changes)."""
    taxonomy = load_taxonomy(settings.taxonomy)
    return build_schedules(settings.schedule, load_effective_subscribers(settings, taxonomy))


# -- the runner ----------------------------------------------------------------------------------


@dataclass
class DueSend:
    """What `Runner.send_due` did for one schedule.

    status: nothing-due | already-sent | no-subscribers | sent | stopped (a stop request; the
    next start finishes it) | incomplete (the delivery broke off) | locked (another send held the
    lock too long) | error (inputs unreadable). The last three are tried again later.
    """

    schedule: str
    status: str
    due: datetime | None = None
    report: SendReport | None = None
    detail: str | None = None

    @property
    def retry(self) -> bool:
        return self.status in ("incomplete", "locked", "error")


def _when(moment: datetime, zone: tzinfo) -> str:
    local, utc = moment.astimezone(zone), f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return utc if local.utcoffset() == timedelta() else f"{local:%Y-%m-%d %H:%M %Z} ({utc})"


class Runner:
    """Polls the sources and sends each schedule's digest when it is due, until stopped.

    `send_due` and `poll` are what the jobs call; tests call them directly with a fake clock.
    All jobs run on one worker thread, so this process never runs two sends at once; the send
    lock keeps it apart from a manual `digest send`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        self.settings, self.clock, self.lock_wait = settings, clock, lock_wait
        self.stopping = threading.Event()
        self.stop_reason: str | None = None
        self.scheduler: BackgroundScheduler | None = None

    # -- jobs -------------------------------------------------------------------------------------
    def poll(self) -> PickupReport | None:
        """Pick up new items so they are in the state before a send fires, and read the
        bounce mailbox (`poll_bounces`)."""
        if self.stopping.is_set():
            return None
        self.poll_bounces()
        try:
            taxonomy = load_taxonomy(self.settings.taxonomy)
            with State(self.settings.state) as state:
                report = pick_up(self.settings, state, taxonomy, self.clock())
        except DigestError as exc:
            log.error("poll: %s", exc)
            return None
        log.info(
            "poll: picked up %d new item(s) (%d in %d source file(s))",
            report.new,
            report.total,
            report.files,
        )
        for problem in report.problems:
            log.warning("poll: %s", problem.message)
        for warning in report.warnings:
            log.warning("poll: %s", warning)
        return report

    def poll_bounces(self) -> IntakeReport | None:
        """Process the bounce mailbox's new mail: suppress, count, unsubscribe. A mailbox
        that cannot be read is logged and tried again at the next poll."""
        try:
            report = read_bounces(self.settings, clock=self.clock)
        except DigestError as exc:
            log.error("bounces: %s", exc)
            return None
        for problem in report.problems:
            log.error("bounces: %s", problem.message)
        if report.mails:
            actions = report.actions
            log.info(
                "bounces: %d mail(s): %d suppressed, %d counted, %d unsubscribed",
                report.mails,
                actions["suppressed"],
                actions["counted"],
                actions["unsubscribed"],
            )
        return report

    def send_due(self, key: str) -> DueSend:
        """Send schedule `key`'s latest due time within catch_up, unless a finished run already
        did. Safe to call at any moment, as often as wanted."""
        if self.stopping.is_set():
            return DueSend(key, "stopped")
        try:
            result = self._send_due(key)
        except Exception as exc:  # a job must never take the runner down; try again later
            log.exception("%s: the send failed", key)
            result = DueSend(key, "error", detail=str(exc))
        if result.retry:
            self._retry_later(key)
        return result

    def _send_due(self, key: str) -> DueSend:
        now = self.clock()
        try:
            schedule = next((s for s in load_schedules(self.settings) if s.key == key), None)
        except DigestError as exc:
            log.error("%s: %s", key, exc)
            return DueSend(key, "error", detail=str(exc))
        if schedule is None or not schedule.subscribers:
            log.info("%s: no subscriber is on this schedule now; nothing to send", key)
            return DueSend(key, "no-subscribers")
        due = schedule.latest_due(now, self.settings.catch_up)
        if due is None:
            following = schedule.next_fire(now)
            log.info(
                "%s: nothing due; next send %s",
                key,
                _when(following, schedule.zone) if following else "never",
            )
            return DueSend(key, "nothing-due")
        due_at = schedule.due_key(due)
        with State(self.settings.state) as state:
            done = due_at in state.completed_due_times()
        if done:
            log.info("%s: the send due %s was already made", key, _when(due, schedule.zone))
            return DueSend(key, "already-sent", due)
        log.info(
            "%s: sending the digest due %s to %d subscriber(s)",
            key,
            _when(due, schedule.zone),
            len(schedule.subscribers),
        )
        try:
            report = self._send_with_lock(schedule, due_at)
        except LockedError as exc:
            if self.stopping.is_set():
                return DueSend(key, "stopped", due)
            log.warning("%s: %s; trying again later", key, exc.message)
            return DueSend(key, "locked", due, detail=exc.message)
        except DigestError as exc:
            log.error("%s: %s", key, exc)
            return DueSend(key, "error", due, detail=str(exc))
        return self._outcome(schedule, due, report)

    def _send_with_lock(self, schedule: Schedule, due_at: str) -> SendReport:
        """`send`, waiting up to lock_wait for another send in short steps so that a
        stop request is seen; the first try does not wait, so a wait is logged when it starts."""
        deadline = time.monotonic() + self.lock_wait
        wait = 0.0
        while True:
            try:
                return send(
                    self.settings,
                    only=schedule.subscribers,
                    kind="scheduled",
                    due_at=due_at,
                    lock_wait=wait,
                    clock=self.clock,
                    should_stop=self.stopping.is_set,
                )
            except LockedError as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.stopping.is_set():
                    raise
                if wait == 0.0:
                    log.info(
                        "%s: %s; waiting up to %s",
                        schedule.key,
                        exc.message,
                        format_duration(timedelta(seconds=self.lock_wait)),
                    )
                wait = min(LOCK_STEP, remaining)

    def _outcome(self, schedule: Schedule, due: datetime, report: SendReport) -> DueSend:
        counts = (
            f"{report.count('sent')} sent, {report.count('failed')} failed, "
            f"{report.count('skipped')} skipped (nothing new); "
            f"picked up {report.pickup.new} new item(s)"
        )
        for outcome in report.failed:
            log.warning("%s: %s failed: %s", schedule.key, outcome.email, outcome.error)
        for problem in report.pickup.problems:
            log.warning("%s: %s", schedule.key, problem.message)
        for warning in report.pickup.warnings:
            log.warning("%s: %s", schedule.key, warning)
        if report.aborted and self.stopping.is_set():
            log.info(
                "%s: stopped after %s; the rest go out on the next start", schedule.key, counts
            )
            return DueSend(schedule.key, "stopped", due, report, report.aborted)
        if report.aborted:
            log.error("%s: broke off after %s: %s", schedule.key, counts, report.aborted)
            return DueSend(schedule.key, "incomplete", due, report, report.aborted)
        log.info("%s: done: %s", schedule.key, counts)
        return DueSend(schedule.key, "sent", due, report)

    def _retry_later(self, key: str) -> None:
        scheduler = self.scheduler
        if scheduler is None or not scheduler.running or self.stopping.is_set():
            return
        at = datetime.now(UTC) + RETRY_AFTER
        scheduler.add_job(
            self.send_due,
            DateTrigger(run_date=at),
            args=[key],
            id=f"retry:{key}",
            name=f"retry {key}",
            replace_existing=True,
        )
        log.info("%s: trying again at %s", key, f"{at:%Y-%m-%d %H:%M} UTC")

    # -- the scheduler ----------------------------------------------------------------------------
    def build_scheduler(self, schedules: Sequence[Schedule], now: datetime) -> BackgroundScheduler:
        """The jobs, not started: a poll every poll_every and one send job per schedule, all
        first run at `now` (the catch-up on start)."""
        grace = max(1, int(self.settings.catch_up.total_seconds()))
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        )
        scheduler.add_job(
            self.poll,
            IntervalTrigger(seconds=self.settings.poll_every.total_seconds(), timezone=UTC),
            id="poll",
            name="pick up new items",
            next_run_time=now,
        )
        for schedule in schedules:
            scheduler.add_job(
                self.send_due,
                schedule.trigger,
                args=[schedule.key],
                id=f"send:{schedule.key}",
                name=f"send {schedule.key}",
                next_run_time=now,
            )
        return scheduler

    def start(self) -> None:
        """Start the jobs in the background; input problems raise before anything starts."""
        load_inputs(self.settings, with_subscribers=False)  # the templates, checked
        schedules = load_schedules(self.settings)
        now = datetime.now(UTC)
        log.info(
            "starting: %d schedule(s); polling sources every %s; catch-up window %s",
            len(schedules),
            format_duration(self.settings.poll_every),
            format_duration(self.settings.catch_up),
        )
        for schedule in schedules:
            following = schedule.next_fire(now)
            log.info(
                "schedule %s: '%s' in %s, %s; next send %s",
                schedule.key,
                schedule.cron,
                schedule.timezone,
                schedule.covers,
                _when(following, schedule.zone) if following else "never",
            )
        self.scheduler = self.build_scheduler(schedules, now)
        self.scheduler.start()

    def request_stop(self, reason: str = "stop requested") -> None:
        """Safe from a signal handler: only sets a flag."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stopping.set()

    def wait(self) -> None:
        self.stopping.wait()

    def stop(self) -> None:
        """Stop the jobs; a send in flight finishes its current message first."""
        self.stopping.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
