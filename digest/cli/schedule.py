"""`digest run` keeps the schedule; `digest schedule` shows when each digest goes out next."""

from __future__ import annotations

import logging
import signal
import sys
import time
from datetime import UTC, datetime
from types import FrameType

import click
from rich.table import Table

from ..scheduler import Runner, load_schedules
from ..settings import Settings
from .main import config_option
from .output import out, print_json


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%SZ"
    )
    formatter.converter = time.gmtime  # timestamps in UTC, like the state
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # APScheduler's own lines ("Running job ...") only add noise unless asked for.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)


@click.command()
@config_option
@click.option("-v", "--verbose", is_flag=True, help="Also log APScheduler's own messages.")
def run(settings: Settings, verbose: bool) -> None:
    """Keep the schedule: poll the sources and send each digest when it is due, until stopped.

    Runs in the foreground and logs to stderr. SIGTERM or Ctrl-C stops it once the message in
    flight is handed over (a second signal stops it at once). A send that fell due while it was
    not running goes out once on the next start, if that is within `catch_up` of the due time.
    Subscribers who set a new frequency or timezone get their own schedule on the next start.

    \b
    Example:
      digest run --config /srv/digest/digest.yaml
    """
    _configure_logging(verbose)
    log = logging.getLogger("digest.run")
    runner = Runner(settings)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.request_stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        runner.start()
        runner.wait()
        log.info(
            "%s received: stopping after the message in flight (signal again to stop at once)",
            runner.stop_reason,
        )
        # A second signal kills the process; a message cut off then is resent by the next run.
        for sig in previous:
            signal.signal(sig, signal.SIG_DFL)
        runner.stop()
        log.info("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _parse_moment(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date and time, e.g. 2026-03-09T08:00-06:00",
            param_hint="--at",
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("schedule")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.option(
    "--at",
    "at",
    metavar="DATETIME",
    help="Show the sends after this moment instead of now (ISO 8601; UTC without an offset).",
)
def schedule_command(settings: Settings, as_json: bool, at: str | None) -> None:
    """The next send of each schedule, in its local time and in UTC.

    The default schedule is `schedule:` in the settings; subscribers who set their own
    frequency or timezone are grouped into one schedule per (frequency, timezone).

    \b
    Examples:
      digest schedule
      digest schedule --json --at 2026-11-01T00:00Z
    """
    now = _parse_moment(at)
    planned = [(schedule, schedule.next_fire(now)) for schedule in load_schedules(settings)]
    if as_json:
        rows = [
            {
                "schedule": schedule.key,
                "frequency": schedule.frequency,
                "cron": schedule.cron,
                "timezone": schedule.timezone,
                "subscribers": list(schedule.subscribers),
                "next_local": following.astimezone(schedule.zone).isoformat()
                if following
                else None,
                "next_utc": f"{following:%Y-%m-%dT%H:%M:%SZ}" if following else None,
            }
            for schedule, following in planned
        ]
        print_json(rows)
        return
    table = Table(title=f"Next sends after {now:%Y-%m-%d %H:%M} UTC", title_justify="left")
    for column in ("schedule", "when", "covers", "next send (local)", "next send (UTC)"):
        table.add_column(column)
    for schedule, following in planned:
        if following is None:
            local, utc = "never", ""
        else:
            moment = following.astimezone(schedule.zone)
            local = f"{moment:%a %Y-%m-%d %H:%M %Z} ({schedule.timezone})"
            utc = f"{following.astimezone(UTC):%a %Y-%m-%d %H:%M} UTC"
        table.add_row(
            schedule.key,
            f"{schedule.frequency}: {schedule.cron}",
            schedule.covers if schedule.subscribers else "[dim]nobody[/]",
            local,
            utc,
        )
    out.print(table)
