"""Crontab expressions read the way crontab reads them, on a timezone's wall clock.

- `crontab_trigger(expr, zone)`: an APScheduler trigger for a crontab expression, matched on the
  local wall clock of `zone`.
- `fire_times(trigger, start, end)`, `latest_fire(trigger, now, within)`.

Crontab, not APScheduler, decides the meaning: day-of-week 0 and 7 are Sunday (APScheduler 3
counts 0 as Monday), and when both day-of-month and day-of-week are restricted a day matching
either fires (APScheduler would require both).

Clock changes: a local time that happens twice (fall back) fires once, at its first
occurrence; a local time the clock skips (spring forward) fires when the clock would have shown
it, so 02:30 on a spring-forward day fires at 03:30. APScheduler's own CronTrigger fires a fall-
back 01:30 twice and skips a midnight that does not exist (America/Havana, 2021-03-14), so wall
times are matched here and turned into instants by `WallClockTrigger._instant`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_RANGES = {
    "minute": (0, 59),
    "hour": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (0, 7),
}
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NAMES = {
    "month": {name: number for number, name in enumerate(_MONTHS, 1)},
    "day-of-week": {name: number for number, name in enumerate(_DAYS)},
}
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ITEM = re.compile(
    r"^(?:(?P<star>\*)|(?P<first>[a-z0-9]+)(?:-(?P<last>[a-z0-9]+))?)(?:/(?P<step>\d+))?$"
)
# Wider than any clock change in tzdata (Samoa skipped a whole day in 2011).
_WIDEST_JUMP = timedelta(hours=26)
_FOREVER = datetime(2000, 1, 1, tzinfo=UTC)  # any fixed start: "never fires" does not depend on it


def crontab_fields(expr: str) -> list[str]:
    """The five fields of a crontab expression, macros such as `@daily` spelled out."""
    text = expr.strip().lower()
    if text.startswith("@"):
        if text not in MACROS:
            raise ValueError(f"unknown macro {expr.strip()!r}; use one of {', '.join(MACROS)}")
        text = MACROS[text]
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"{len(fields)} field(s), expected 5: minute hour day-of-month month day-of-week"
        )
    return fields


def _value(field: str, text: str) -> int:
    names = _NAMES.get(field, {})
    if text.isdigit():
        number = int(text)
    elif text in names:
        number = names[text]
    else:
        known = f" or a name ({', '.join(names)})" if names else ""
        raise ValueError(f"{field} {text!r} is not a number{known}")
    low, high = _RANGES[field]
    if not low <= number <= high:
        sunday = " (0 and 7 are Sunday)" if field == "day-of-week" else ""
        raise ValueError(f"{field} {number} is out of range {low}-{high}{sunday}")
    return number


def field_values(field: str, text: str) -> set[int]:
    """The values a crontab field matches: `1-5`, `*/15`, `mon-fri`, `0,6`; Sunday is 0."""
    low, high = _RANGES[field]
    if field == "day-of-week":
        high = 6  # 7 is only another name for Sunday
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(
                f"{field} {text!r}: {item!r} is not crontab syntax "
                "(use N, N-M, *, */S or N-M/S, separated by commas)"
            )
        step = int(match["step"]) if match["step"] else 1
        if step == 0:
            raise ValueError(f"{field} {item!r}: a step must be at least 1")
        if match["star"]:
            first, last = low, high
        else:
            if match["step"] and not match["last"]:
                raise ValueError(f"{field} {item!r}: a step needs a range, e.g. */{step}")
            first = _value(field, match["first"])
            last = _value(field, match["last"]) if match["last"] else first
            if field == "day-of-week" and match["last"] == "sun" and first > 0:
                last = 7  # fri-sun: Sunday ends the week here
            if first > last:
                raise ValueError(f"{field} {item!r}: the range runs backwards")
        values.update(v % 7 if field == "day-of-week" else v for v in range(first, last + 1, step))
    return values


def apscheduler_day_of_week(text: str) -> str:
    """A crontab day-of-week field for APScheduler 3, by name: `0` -> `sun`, `1-5` ->
    `mon,tue,wed,thu,fri`. Names because APScheduler 3 counts 0 as Monday."""
    days = field_values("day-of-week", text)
    if len(days) == 7:
        return "*"
    return ",".join(_DAYS[d] for d in sorted(days))


def _apscheduler_field(field: str, text: str) -> str:
    values = field_values(field, text)
    low, high = _RANGES[field]
    if values == set(range(low, high + 1)):
        return "*"
    return ",".join(str(v) for v in sorted(values))


class WallClockTrigger(BaseTrigger):
    """A crontab expression matched on the local wall clock of `zone` (an APScheduler trigger).

    The fields are matched by APScheduler CronTriggers running in UTC, a clock that never
    jumps, over wall-clock times; `_instant` then places each wall time on the real timeline.
    """

    __slots__ = ("expr", "zone", "_triggers")

    def __init__(self, expr: str, zone: tzinfo) -> None:
        self.expr, self.zone = expr, zone
        minute, hour, day, month, weekday = crontab_fields(expr)
        for name, text in zip(FIELDS, (minute, hour, day, month, weekday), strict=True):
            field_values(name, text)  # crontab syntax only; APScheduler accepts more
        fields = {
            "minute": _apscheduler_field("minute", minute),
            "hour": _apscheduler_field("hour", hour),
            "month": _apscheduler_field("month", month),
            "timezone": UTC,
        }
        day_text = _apscheduler_field("day-of-month", day)
        weekday_text = apscheduler_day_of_week(weekday)
        if day.startswith("*") or weekday.startswith("*"):
            # As in crontab, a field starting with * leaves the other one to decide alone.
            self._triggers = [CronTrigger(day=day_text, day_of_week=weekday_text, **fields)]
        else:  # both restricted: crontab fires on a day matching either
            self._triggers = [
                CronTrigger(day=day_text, day_of_week="*", **fields),
                CronTrigger(day="*", day_of_week=weekday_text, **fields),
            ]
        if self._next_wall(_FOREVER.replace(tzinfo=None)) is None:
            raise ValueError(f"{expr.strip()!r} never fires (no such date)")

    def __str__(self) -> str:
        return f"crontab[{self.expr}, {self.zone}]"

    def __repr__(self) -> str:
        return f"<WallClockTrigger ({self.expr!r}, timezone={str(self.zone)!r})>"

    def _next_wall(self, wall: datetime) -> datetime | None:
        """The first matching wall-clock time at or after `wall` (naive)."""
        found = [
            t.get_next_fire_time(None, wall.replace(tzinfo=UTC, fold=0)) for t in self._triggers
        ]
        times = [f for f in found if f is not None]
        return min(times).replace(tzinfo=None) if times else None

    def _instant(self, wall: datetime) -> datetime:
        """A wall-clock time on the timeline: an ambiguous time at its first occurrence, a
        skipped one with the offset before the jump (02:30 in a 02:00->03:00 gap is 03:30)."""
        return wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)

    def _offset(self, moment: datetime) -> timedelta:
        return moment.astimezone(self.zone).utcoffset() or timedelta()

    def _recent_jump(self, moment: datetime) -> timedelta:
        """The length of a forward clock jump that happened less than its own length before
        `moment`, else zero: only then do wall times and instants run out of order."""
        jump = self._offset(moment) - self._offset(moment - _WIDEST_JUMP)
        if jump <= timedelta() or self._offset(moment - jump) == self._offset(moment):
            return timedelta()
        return jump

    def next_fire(self, now: datetime) -> datetime | None:
        """The first fire time at or after `now` (aware, UTC).

        Wall times map to instants in order, except just after a forward jump: a skipped wall
        time lands up to the jump's length later than the wall times after it. So there the
        search starts that much earlier and looks that much past the first hit.
        """
        now = now.astimezone(UTC)
        wall = now.astimezone(self.zone).replace(tzinfo=None, fold=0)
        candidate = self._next_wall(wall - self._recent_jump(now))
        while candidate is not None and self._instant(candidate) < now:
            candidate = self._next_wall(candidate + timedelta(seconds=1))
        if candidate is None:
            return None
        best = self._instant(candidate)
        reach = candidate + self._recent_jump(best)
        following = self._next_wall(candidate + timedelta(seconds=1))
        while following is not None and following <= reach:
            instant = self._instant(following)
            if now <= instant < best:
                best = instant
            following = self._next_wall(following + timedelta(seconds=1))
        return best

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        start = previous_fire_time + timedelta(microseconds=1) if previous_fire_time else now
        found = self.next_fire(start)
        return found.astimezone(self.zone) if found else None


def crontab_trigger(expr: str, timezone: str | tzinfo) -> WallClockTrigger:
    """A trigger for a crontab expression in a timezone; ValueError says what is wrong.

    >>> crontab_trigger("0 8 * * 0", "America/Jamaica").next_fire(datetime(2026, 3, 2, tzinfo=UTC))
    datetime.datetime(2026, 3, 8, 13, 0, tzinfo=datetime.timezone.utc)
    """
    zone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    return WallClockTrigger(expr, zone)


def fire_times(trigger: WallClockTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time t with start <= t <= end, in order (UTC)."""
    times: list[datetime] = []
    found = trigger.next_fire(start)
    while found is not None and found <= end:
        times.append(found)
        found = trigger.next_fire(found + timedelta(microseconds=1))
    return times


def latest_fire(trigger: WallClockTrigger, now: datetime, within: timedelta) -> datetime | None:
    """The latest fire time t with now - within <= t <= now, or None."""
    span = min(within, timedelta(hours=1))
    while True:  # look back in growing windows: an every-minute cron need not list a day
        times = fire_times(trigger, now - span, now)
        if times:
            return times[-1]
        if span >= within:
            return None
        span = min(span * 2, within)
