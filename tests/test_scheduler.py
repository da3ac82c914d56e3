"""The weekly schedule: crontab meaning, per-subscriber timezones, clock changes, catch-up after
an outage, and a scheduled send beside a manual one.

Times come from a fake clock handed to the runner; the sends themselves are real (SQLite state,
MJML rendering, SMTP to an aiosmtpd server on loopback)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from digest.crontab import apscheduler_day_of_week, crontab_trigger, field_values, fire_times
from digest.errors import SettingsError
from digest.models import Subscriber
from digest.scheduler import Runner, Schedule, build_schedules, load_schedules
from digest.send import SendReport, send
from digest.settings import ScheduleSettings, load_settings
from digest.state import State

from .conftest import Project, SmtpServer

GUATEMALA = ZoneInfo("America/Guatemala")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


class FakeClock:
    """The runner's clock; it only moves when a test moves it (forward)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        assert moment >= self.now, "the fake clock only moves forward"
        self.now = moment


# -- crontab meaning -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("0", "sun"),
        ("7", "sun"),
        ("1", "mon"),
        ("6", "sat"),
        ("0,7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("fri-sun", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("1-6/2", "mon,wed,fri"),
        ("MON,wed", "mon,wed"),
        ("0-7", "*"),
        ("*", "*"),
    ],
)
def test_day_of_week_is_translated_from_crontab_numbering(field: str, expected: str) -> None:
    assert apscheduler_day_of_week(field.lower()) == expected


@pytest.mark.parametrize(
    ("expr", "weekday"), [("0 8 * * 0", 6), ("0 8 * * 7", 6), ("0 8 * * 1", 0)]
)
def test_sunday_is_0_and_7_when_it_fires(expr: str, weekday: int) -> None:
    trigger = crontab_trigger(expr, "UTC")
    fires = fire_times(trigger, utc(2026, 3, 1), utc(2026, 3, 29))
    assert len(fires) == 4
    assert {f.weekday() for f in fires} == {weekday}
    assert {(f.hour, f.minute) for f in fires} == {(8, 0)}


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    either = fire_times(crontab_trigger("0 8 1 * mon", "UTC"), utc(2026, 5, 25), utc(2026, 6, 16))
    assert [f.day for f in either] == [25, 1, 8, 15]  # Mondays, and Monday June 1 once
    stepped = fire_times(crontab_trigger("0 8 */2 * mon", "UTC"), utc(2026, 6, 1), utc(2026, 7, 1))
    assert [f.day for f in stepped] == [1, 15, 29]  # a field starting with *: both must match


def test_macros_and_month_names() -> None:
    assert fire_times(crontab_trigger("@monthly", "UTC"), utc(2026, 1, 2), utc(2026, 3, 2)) == [
        utc(2026, 2, 1),
        utc(2026, 3, 1),
    ]
    assert field_values("month", "jan-mar,dec") == {1, 2, 3, 12}


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("0 8 * * 8", "day-of-week 8 is out of range 0-7 (0 and 7 are Sunday)"),
        ("61 8 * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 8 * *", "4 field(s), expected 5"),
        ("0 8 L * *", "day-of-month 'l' is not a number"),
        ("0 8 * * 5-1", "the range runs backwards"),
        ("0 8 * * mon/2", "a step needs a range"),
        ("*/0 8 * * *", "a step must be at least 1"),
        ("0 8 30 2 *", "never fires"),
        ("@reboot", "unknown macro"),
    ],
)
def test_invalid_cron_expressions_say_what_is_wrong(expr: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        crontab_trigger(expr, "UTC")


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_settings_name_a_bad_cron_with_file_and_line(project: Project) -> None:
    project.settings(schedule={"cron": "0 8 * * 8", "timezone": "America/Guatemala"})
    with pytest.raises(SettingsError) as caught:
        load_settings(project.config)
    line = _line_of(project.config.read_text(), "cron:")
    assert f"{project.config}:{line}: setting 'schedule.cron'" in caught.value.message
    assert "day-of-week 8 is out of range" in caught.value.message

    project.settings(schedule={"cron": "@weekly", "timezone": "America/Jamaica"})
    assert load_settings(project.config).schedule.cron == "@weekly"


def test_the_cli_refuses_a_bad_cron_or_timezone(project: Project) -> None:
    project.settings(schedule={"cron": "0 8 * * mon", "timezone": "America/Kingston"})
    result = project.run("schedule")
    assert result.returncode == 2
    assert "setting 'schedule.timezone'" in result.stderr
    assert "unknown timezone 'America/Kingston'" in result.stderr

    project.settings(schedule={"cron": "0 8 * * 1-8", "timezone": "America/Jamaica"})
    result = project.run("run")
    assert result.returncode == 2
    assert "setting 'schedule.cron'" in result.stderr


# -- clock changes -------------------------------------------------------------------------------


def test_a_time_skipped_by_spring_forward_fires_once_when_the_clock_would_show_it() -> None:
    trigger = crontab_trigger("30 2 * * *", "America/New_York")  # 2026-03-08: 02:00 -> 03:00
    fires = fire_times(trigger, local(NEW_YORK, 2026, 3, 7), local(NEW_YORK, 2026, 3, 10))
    assert [f.astimezone(NEW_YORK).strftime("%d %H:%M %Z") for f in fires] == [
        "07 02:30 EST",
        "08 03:30 EDT",
        "09 02:30 EDT",
    ]


def test_a_time_repeated_by_fall_back_fires_once() -> None:
    trigger = crontab_trigger("30 1 * * *", "America/New_York")  # 2026-11-01: 02:00 -> 01:00
    fires = fire_times(trigger, local(NEW_YORK, 2026, 10, 31), local(NEW_YORK, 2026, 11, 3))
    assert [f.astimezone(NEW_YORK).strftime("%d %H:%M %Z") for f in fires] == [
        "31 01:30 EDT",
        "01 01:30 EDT",
        "02 01:30 EST",
    ]


def test_a_midnight_that_does_not_exist_still_fires() -> None:
    havana = ZoneInfo("America/Havana")  # 2021-03-14: 00:00 -> 01:00
    fires = fire_times(
        crontab_trigger("0 0 * * *", havana), local(havana, 2021, 3, 13), local(havana, 2021, 3, 16)
    )
    assert [f.astimezone(havana).strftime("%d %H:%M %Z") for f in fires] == [
        "13 00:00 CST",
        "14 01:00 CDT",
        "15 00:00 CDT",
        "16 00:00 CDT",
    ]


def test_mexico_city_while_it_still_changed_its_clocks() -> None:
    mexico = ZoneInfo("America/Mexico_City")  # 2021-04-04 02:00 -> 03:00; 2021-10-31 02:00 -> 01:00
    spring = fire_times(
        crontab_trigger("0 2 * * sun", mexico),
        local(mexico, 2021, 3, 28),
        local(mexico, 2021, 4, 12),
    )
    assert [f.astimezone(mexico).strftime("%m-%d %H:%M %Z") for f in spring] == [
        "03-28 02:00 CST",
        "04-04 03:00 CDT",
        "04-11 02:00 CDT",
    ]
    autumn = fire_times(
        crontab_trigger("30 1 * * *", mexico),
        local(mexico, 2021, 10, 30),
        local(mexico, 2021, 11, 1),
    )
    assert [f.astimezone(mexico).strftime("%m-%d %H:%M %Z") for f in autumn] == [
        "10-30 01:30 CDT",
        "10-31 01:30 CDT",
    ]


def test_a_weekly_send_keeps_its_local_time_all_year() -> None:
    fires = fire_times(
        crontab_trigger("0 8 * * mon", "America/New_York"), utc(2026, 1, 1), utc(2027, 1, 1)
    )
    assert len(fires) == 52
    assert {f.astimezone(NEW_YORK).strftime("%a %H:%M") for f in fires} == {"Mon 08:00"}
    assert {f.hour for f in fires} == {12, 13}  # EDT and EST
    gaps = {b - a for a, b in zip(fires, fires[1:], strict=False)}
    assert gaps == {timedelta(days=7), timedelta(days=7, hours=-1), timedelta(days=7, hours=1)}


def _brute_force(expr: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every minute of the wall clock checked against the fields, each placed on the timeline
    by the rule (first occurrence; skipped times as if the clock had not jumped)."""
    minute, hour, day, month, weekday = expr.split()
    sets = [
        field_values(name, text)
        for name, text in zip(
            ("minute", "hour", "day-of-month", "month", "day-of-week"), expr.split(), strict=True
        )
    ]
    either = not day.startswith("*") and not weekday.startswith("*")
    found = set()
    wall = (
        (start - timedelta(days=2)).astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    )
    last = (end + timedelta(days=2)).astimezone(zone).replace(tzinfo=None)
    while wall <= last:
        day_ok = wall.day in sets[2]
        weekday_ok = (wall.isoweekday() % 7) in sets[4]
        days = (day_ok or weekday_ok) if either else (day_ok and weekday_ok)
        if wall.minute in sets[0] and wall.hour in sets[1] and wall.month in sets[3] and days:
            instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
            if start <= instant <= end:
                found.add(instant)
        wall += timedelta(minutes=1)
    return sorted(found)


@pytest.mark.parametrize(
    ("expr", "zone", "around"),
    [
        ("*/30 * * * *", "America/New_York", utc(2026, 3, 8, 7)),
        ("*/30 * * * *", "America/New_York", utc(2026, 11, 1, 6)),
        ("15 0 * * *", "America/Havana", utc(2021, 3, 14, 5)),
        ("0,30 0-2 * * *", "America/Havana", utc(2021, 11, 7, 5)),
        ("0 8 * * *", "Pacific/Apia", utc(2011, 12, 30, 10)),  # Samoa skipped December 30
        ("*/20 1-3 * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 15)),  # a 30-minute change
        ("45 1 1 * sun", "Europe/London", utc(2026, 3, 29, 1)),
    ],
)
def test_fire_times_match_a_brute_force_walk_of_the_wall_clock(
    expr: str, zone: str, around: datetime
) -> None:
    start, end = around - timedelta(days=2), around + timedelta(days=2)
    expected = _brute_force(expr, ZoneInfo(zone), start, end)
    assert expected, "the case should have fire times"
    assert fire_times(crontab_trigger(expr, zone), start, end) == expected


# -- schedules -----------------------------------------------------------------------------------


def test_one_schedule_per_frequency_and_timezone() -> None:
    default = ScheduleSettings(cron="15 7 * * 1-5", timezone="America/Guatemala")
    subscribers = [
        Subscriber("a@example.org"),
        Subscriber("b@example.org", timezone="America/Guatemala"),  # same as the default
        Subscriber("c@example.org", timezone="America/Jamaica"),
        Subscriber("d@example.org", timezone="America/Jamaica"),
        Subscriber("e@example.org", frequency="daily"),
        Subscriber("f@example.org", frequency="monthly", timezone="America/Mexico_City"),
    ]
    assert build_schedules(default, subscribers) == [
        Schedule("default", "weekly", "15 7 * * 1-5", "America/Guatemala", ("a@example.org", "b@example.org")),
        Schedule("daily:America/Guatemala", "daily", "15 7 * * *", "America/Guatemala", ("e@example.org",)),
        Schedule("monthly:America/Mexico_City", "monthly", "15 7 1 * *", "America/Mexico_City", ("f@example.org",)),
        Schedule("weekly:America/Jamaica", "weekly", "15 7 * * 1-5", "America/Jamaica", ("c@example.org", "d@example.org")),
    ]  # fmt: skip


def test_monday_8am_in_kingston_and_mexico_city_are_different_instants() -> None:
    default = ScheduleSettings()
    schedules = {
        s.key: s
        for s in build_schedules(
            default,
            [
                Subscriber("k@example.org", timezone="America/Jamaica"),
                Subscriber("m@example.org", timezone="America/Mexico_City"),
            ],
        )
    }
    now = utc(2026, 3, 1)
    assert schedules["weekly:America/Jamaica"].next_fire(now) == utc(2026, 3, 2, 13)
    assert schedules["weekly:America/Mexico_City"].next_fire(now) == utc(2026, 3, 2, 14)
    assert schedules["default"].subscribers == ()


def test_latest_due_is_within_catch_up_inclusive() -> None:
    schedule = build_schedules(ScheduleSettings(), [])[0]
    due = local(GUATEMALA, 2026, 3, 2, 8)
    day = timedelta(days=1)
    assert schedule.latest_due(due, day) == due
    assert schedule.latest_due(due + day, day) == due
    assert schedule.latest_due(due + day + timedelta(seconds=1), day) is None
    assert schedule.latest_due(due - timedelta(seconds=1), day) is None
    assert schedule.latest_due(due + timedelta(weeks=3, hours=2), day) == due + timedelta(weeks=3)
    assert schedule.due_key(due) == "default@2026-03-02T14:00:00Z"


# -- the runner, with real sends -----------------------------------------------------------------


def add_item(project: Project, number: int) -> str:
    """A new Markdown item in the project's sources; returns its id."""
    item_id = f"scheduler-test-{number}"
    (project.root / "items" / f"zz-scheduler-{number}.md").write_text(
        f"---\nid: {item_id}\ntitle: Bulletin number {number}\ndate: 2026-03-01\n"
        f"link: https://example.org/bulletin/{number}\n---\nNews item {number}.\n",
        encoding="utf-8",
    )
    return item_id


@pytest.fixture
def scheduled(project: Project, smtp_server: SmtpServer) -> Project:
    project.use_smtp(smtp_server, timeout=60)
    project.settings(schedule={"cron": "0 8 * * mon", "timezone": "America/Guatemala"})
    project.subscribers([{"email": "ana@example.org"}, {"email": "ben@example.org"}])
    return project


def make_runner(project: Project, clock: FakeClock, **options: Any) -> Runner:
    """A fresh runner, as after a restart."""
    return Runner(load_settings(project.config), clock=clock, **options)


def received(server: SmtpServer) -> Counter[str]:
    return Counter(address for r in server.handler.received for address in r.rcpt_tos)


def scheduled_runs(project: Project) -> list[tuple[str | None, str]]:
    with State(project.state) as state:
        runs = state.runs(1000)
    return [(r.due_at, r.status) for r in reversed(runs) if r.kind == "scheduled"]


def test_sends_when_due_and_never_twice_for_one_due_time(
    scheduled: Project, smtp_server: SmtpServer
) -> None:
    clock = FakeClock(local(GUATEMALA, 2026, 3, 2, 7, 59))
    assert make_runner(scheduled, clock).send_due("default").status == "nothing-due"
    assert received(smtp_server) == {}

    clock.set(local(GUATEMALA, 2026, 3, 2, 8))
    runner = make_runner(scheduled, clock)
    result = runner.send_due("default")
    assert (result.status, result.due) == ("sent", local(GUATEMALA, 2026, 3, 2, 8))
    assert received(smtp_server) == {"ana@example.org": 1, "ben@example.org": 1}

    add_item(scheduled, 1)  # something new: a repeated send would deliver it
    assert runner.send_due("default").status == "already-sent"
    clock.set(local(GUATEMALA, 2026, 3, 2, 10))
    assert make_runner(scheduled, clock).send_due("default").status == "already-sent"
    assert received(smtp_server) == {"ana@example.org": 1, "ben@example.org": 1}
    assert scheduled_runs(scheduled) == [("default@2026-03-02T14:00:00Z", "ok")]

    clock.set(local(GUATEMALA, 2026, 3, 9, 8))
    assert make_runner(scheduled, clock).send_due("default").status == "sent"
    assert received(smtp_server) == {"ana@example.org": 2, "ben@example.org": 2}


def test_missed_weeks_are_sent_once_on_start(scheduled: Project, smtp_server: SmtpServer) -> None:
    clock = FakeClock(local(GUATEMALA, 2026, 3, 2, 8, 5))
    assert make_runner(scheduled, clock).send_due("default").status == "sent"
    for number in range(1, 4):  # a new item every week of the outage
        add_item(scheduled, number)
    clock.set(local(GUATEMALA, 2026, 3, 23, 11))  # down for three Mondays, back 3 h after one

    result = make_runner(scheduled, clock).send_due("default")
    assert (result.status, result.due) == ("sent", local(GUATEMALA, 2026, 3, 23, 8))
    assert received(smtp_server) == {"ana@example.org": 2, "ben@example.org": 2}
    clock.set(local(GUATEMALA, 2026, 3, 23, 12))
    assert make_runner(scheduled, clock).send_due("default").status == "already-sent"
    assert scheduled_runs(scheduled) == [
        ("default@2026-03-02T14:00:00Z", "ok"),
        ("default@2026-03-23T14:00:00Z", "ok"),
    ]
    last = smtp_server.handler.messages_for("ana@example.org")[-1].get_body(("plain",))
    assert all(f"Bulletin number {n}" in last.get_content() for n in (1, 2, 3))


@pytest.mark.parametrize(("catch_up", "sent"), [("1d", False), ("2d", True)])
def test_a_send_missed_by_more_than_catch_up_waits_for_the_next_one(
    scheduled: Project, smtp_server: SmtpServer, catch_up: str, sent: bool
) -> None:
    scheduled.settings(catch_up=catch_up)
    clock = FakeClock(local(GUATEMALA, 2026, 3, 2, 8))
    assert make_runner(scheduled, clock).send_due("default").status == "sent"
    add_item(scheduled, 1)
    clock.set(local(GUATEMALA, 2026, 3, 10, 9))  # 25 h after Monday's send was due

    status = make_runner(scheduled, clock).send_due("default").status
    assert status == ("sent" if sent else "nothing-due")
    assert received(smtp_server)["ana@example.org"] == (2 if sent else 1)
    clock.set(local(GUATEMALA, 2026, 3, 16, 8))
    assert make_runner(scheduled, clock).send_due("default").status == "sent"
    assert [due for due, _ in scheduled_runs(scheduled)][-1] == "default@2026-03-16T14:00:00Z"


def test_each_subscriber_gets_their_digest_at_their_own_local_time(
    scheduled: Project, smtp_server: SmtpServer
) -> None:
    scheduled.settings(catch_up="1h")
    scheduled.subscribers(
        [
            {"email": "ana@example.org"},
            {"email": "marlon@example.org", "timezone": "America/Jamaica"},
            {"email": "lucia@example.org", "frequency": "daily", "timezone": "America/Mexico_City"},
            {"email": "moira@example.org", "frequency": "monthly"},
        ]
    )
    start = utc(2026, 2, 28)
    clock = FakeClock(start)
    runner = make_runner(scheduled, clock)
    schedules = {s.key: s for s in load_schedules(runner.settings)}
    plan = sorted(
        (due, key)
        for key, schedule in schedules.items()
        for due in fire_times(schedule.trigger, start, start + timedelta(days=3))
    )
    assert plan == [
        (utc(2026, 2, 28, 14), "daily:America/Mexico_City"),
        (utc(2026, 3, 1, 14), "daily:America/Mexico_City"),
        (utc(2026, 3, 1, 14), "monthly:America/Guatemala"),
        (utc(2026, 3, 2, 13), "weekly:America/Jamaica"),  # 08:00 in Kingston
        (utc(2026, 3, 2, 14), "daily:America/Mexico_City"),
        (utc(2026, 3, 2, 14), "default"),  # 08:00 in Guatemala City
    ]
    for number, (due, key) in enumerate(plan, 1):
        add_item(scheduled, number)
        before = received(smtp_server)
        if clock.now < due - timedelta(minutes=1):  # a minute early, nothing goes out
            clock.set(due - timedelta(minutes=1))
            assert {runner.send_due(k).status for k in schedules} <= {"nothing-due", "already-sent"}
            assert received(smtp_server) == before, f"something went out before {key} was due"
        clock.set(due)
        assert runner.send_due(key).status == "sent"
        arrived = received(smtp_server) - before
        assert set(arrived) == set(schedules[key].subscribers)
    assert received(smtp_server) == {
        "lucia@example.org": 3,
        "moira@example.org": 1,
        "marlon@example.org": 1,
        "ana@example.org": 1,
    }


@pytest.mark.parametrize(
    ("cron", "first", "expected"),
    [
        # The first start catches up the day before (within catch_up), then one send a day.
        ("30 2 * * *", utc(2026, 3, 7), ["2026-03-06T07:30", "2026-03-07T07:30", "2026-03-08T07:30", "2026-03-09T06:30"]),
        ("30 1 * * *", utc(2026, 10, 31), ["2026-10-30T05:30", "2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"]),
    ],
)  # fmt: skip
def test_a_clock_change_neither_skips_nor_doubles_a_send(
    scheduled: Project, smtp_server: SmtpServer, cron: str, first: datetime, expected: list[str]
) -> None:
    scheduled.settings(schedule={"cron": cron, "timezone": "America/New_York"})
    clock = FakeClock(first)
    runner = make_runner(scheduled, clock)
    for step in range(3 * 24):  # every hour at :30, with something new each time
        add_item(scheduled, step)
        clock.set(first + timedelta(hours=step, minutes=30))
        runner.send_due("default")
    assert scheduled_runs(scheduled) == [(f"default@{due}:00Z", "ok") for due in expected]
    assert received(smtp_server) == {"ana@example.org": 4, "ben@example.org": 4}


def test_a_schedule_nobody_is_on_sends_nothing(scheduled: Project, smtp_server: SmtpServer) -> None:
    scheduled.subscribers([{"email": "marlon@example.org", "timezone": "America/Jamaica"}])
    clock = FakeClock(local(GUATEMALA, 2026, 3, 2, 8))
    assert make_runner(scheduled, clock).send_due("default").status == "no-subscribers"
    assert received(smtp_server) == {}
    assert scheduled_runs(scheduled) == []


def test_poll_picks_up_new_items_between_sends(scheduled: Project) -> None:
    clock = FakeClock(utc(2026, 3, 1, 12))
    runner = make_runner(scheduled, clock)
    first = runner.poll()
    assert first is not None and first.new > 0
    item = add_item(scheduled, 1)
    clock.set(utc(2026, 3, 1, 13))
    second = runner.poll()
    assert second is not None and second.new == 1
    with State(scheduled.state) as state:
        seen = {s.item.id: s.first_seen for s in state.items()}
    assert seen[item] == utc(2026, 3, 1, 13)


def test_the_jobs_handed_to_apscheduler(scheduled: Project) -> None:
    scheduled.settings(poll_every="15m", catch_up="2d")
    scheduled.subscribers(
        [{"email": "ana@example.org"}, {"email": "k@example.org", "timezone": "Asia/Tokyo"}]
    )
    clock = FakeClock(utc(2026, 3, 1))
    runner = make_runner(scheduled, clock)
    schedules = load_schedules(runner.settings)
    now = utc(2026, 3, 1, 12)
    scheduler = runner.build_scheduler(schedules, now)
    scheduler.start(paused=True)  # job defaults apply once added for real; paused runs nothing
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    assert set(jobs) == {"poll", "send:default", "send:weekly:Asia/Tokyo"}
    assert jobs["poll"].trigger.interval == timedelta(minutes=15)
    for schedule in schedules:
        job = jobs[f"send:{schedule.key}"]
        assert (job.func, job.args) == (runner.send_due, (schedule.key,))
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 2 * 86400)
        assert job.next_run_time == now  # the catch-up on start
        assert job.trigger.get_next_fire_time(None, now) == schedule.next_fire(now)
    assert jobs["send:weekly:Asia/Tokyo"].trigger.get_next_fire_time(None, now) == utc(
        2026, 3, 1, 23
    )


# -- beside a manual send ------------------------------------------------------------------------


class LogSignal(logging.Handler):
    """Sets `seen` when a log message containing `text` is emitted."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.seen = text, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


def test_a_manual_send_holding_the_lock_makes_the_scheduled_one_wait(
    scheduled: Project, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    scheduled.subscribers([{"email": f"s{n}@example.org"} for n in range(3)])
    caplog.set_level(logging.INFO, logger="digest.scheduler")
    waiting = LogSignal("waiting up to")
    logging.getLogger("digest.scheduler").addHandler(waiting)
    entered, gate = threading.Event(), threading.Event()

    async def hold_the_first_message(session: Any, envelope: Any) -> None:
        if not entered.is_set():
            entered.set()
            await asyncio.get_running_loop().run_in_executor(None, gate.wait)

    smtp_server.handler.data_hook = hold_the_first_message
    clock = FakeClock(local(GUATEMALA, 2026, 3, 2, 8))
    settings = load_settings(scheduled.config)
    manual: list[SendReport] = []
    done: list[Any] = []
    manual_thread = threading.Thread(target=lambda: manual.append(send(settings, clock=clock)))
    scheduled_thread = threading.Thread(
        target=lambda: done.append(Runner(settings, clock=clock).send_due("default"))
    )
    manual_thread.start()
    try:
        assert entered.wait(30), "the manual send never reached the server"
        refused = Runner(settings, clock=clock, lock_wait=0).send_due("default")
        assert (refused.status, refused.retry) == ("locked", True)
        new_item = add_item(scheduled, 1)  # arrives while the manual send is still going
        scheduled_thread.start()
        assert waiting.seen.wait(30), "the scheduled send did not wait for the lock"
        assert len(smtp_server.handler.received) == 0
    finally:
        gate.set()
        manual_thread.join(60)
        if scheduled_thread.ident is not None:  # started
            scheduled_thread.join(60)
        logging.getLogger("digest.scheduler").removeHandler(waiting)

    assert manual[0].count("sent") == 3
    assert done[0].status == "sent" and done[0].report.count("sent") == 3
    with State(scheduled.state) as state:
        assert "default@2026-03-02T14:00:00Z" in state.completed_due_times()
        for n in range(3):
            address = f"s{n}@example.org"
            sent = [d for d in state.deliveries(subscriber=address) if d.status == "sent"]
            assert smtp_server.handler.count_for(address) == len(sent) == 2
            items = [i for d in sent for i in d.item_ids]
            assert len(items) == len(set(items)), f"{address} got an item twice"
            assert sent[-1].item_ids == (new_item,)  # the scheduled send: only what was new
            assert state.sent_item_ids(address) == set(items)


def test_a_stop_finishes_the_message_in_flight_and_the_next_start_sends_the_rest(
    scheduled: Project, smtp_server: SmtpServer
) -> None:
    addresses = [f"s{n}@example.org" for n in range(7)]
    scheduled.subscribers([{"email": a} for a in addresses])
    clock = FakeClock(local(GUATEMALA, 2026, 3, 2, 8))
    runner = make_runner(scheduled, clock)

    async def stop_at_the_first_message(session: Any, envelope: Any) -> None:
        runner.request_stop("SIGTERM")  # as the signal handler does, mid-send

    smtp_server.handler.data_hook = stop_at_the_first_message
    first = runner.send_due("default")
    assert first.status == "stopped"
    smtp_server.handler.data_hook = None
    delivered = received(smtp_server)
    assert 0 < sum(delivered.values()) < len(addresses)
    assert set(delivered.values()) == {1}
    with State(scheduled.state) as state:
        assert "default@2026-03-02T14:00:00Z" not in state.completed_due_times()
        statuses = {d.subscriber: d.status for d in state.deliveries()}
    assert statuses == {a: "sent" for a in delivered}  # every handed-over message is recorded
    assert scheduled_runs(scheduled) == [("default@2026-03-02T14:00:00Z", "aborted")]

    clock.set(local(GUATEMALA, 2026, 3, 2, 8, 5))
    restarted = make_runner(scheduled, clock).send_due("default")
    assert restarted.status == "sent"
    assert restarted.report is not None
    assert restarted.report.count("sent") == len(addresses) - sum(delivered.values())
    assert received(smtp_server) == {a: 1 for a in addresses}
    assert make_runner(scheduled, clock).send_due("default").status == "already-sent"


# -- digest schedule -----------------------------------------------------------------------------


def test_digest_schedule_shows_the_next_send_in_local_time_and_utc(project: Project) -> None:
    # The shipped subscribers: five on the default, one in Kingston, one in Mexico City.
    result = project.run("schedule", "--json", "--at", "2026-03-01T00:00Z", check=True)
    rows = {row["schedule"]: row for row in json.loads(result.stdout)}
    assert {k: (r["next_local"], r["next_utc"]) for k, r in rows.items()} == {
        "default": ("2026-03-02T08:00:00-06:00", "2026-03-02T14:00:00Z"),
        "weekly:America/Jamaica": ("2026-03-02T08:00:00-05:00", "2026-03-02T13:00:00Z"),
        "weekly:America/Mexico_City": ("2026-03-02T08:00:00-06:00", "2026-03-02T14:00:00Z"),
    }
    assert rows["weekly:America/Jamaica"]["subscribers"] == ["marlon.james@example.org"]
    assert len(rows["default"]["subscribers"]) == 5

    table = project.run("schedule", "--at", "2026-03-01T00:00Z", check=True).stdout
    assert "Mon 2026-03-02 08:00 EST (America/Jamaica)" in table
    assert "Mon 2026-03-02 13:00 UTC" in table
    assert "marlon.james@example.org" in table and "5 subscribers" in table
