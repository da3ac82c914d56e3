"""`digest send` and `digest history`: a run with its live progress and summary, and past runs."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..send import Outcome, PickupReport, SendReport
from ..send import send as run_send
from ..settings import Settings
from ..sources import label_of, source_for
from ..state import reading
from ..subscribers import valid_email
from .bounces import bounce_summaries, print_bounce_summaries
from .main import config_option
from .output import err, fail, iso, out, print_json, print_problems, warn


class _RichProgress:
    """A live bar on stderr: sent / failed / skipped / remaining and the rate."""

    def __init__(self, enabled: bool, label: str = "sending") -> None:
        self.counts = {"sent": 0, "failed": 0, "skipped": 0}
        self.bar = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "sent {task.fields[sent]} · failed {task.fields[failed]} · "
                "skipped {task.fields[skipped]}"
            ),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=err,
            disable=not enabled,
            transient=False,
        )
        self.task: Any = None
        self.started = datetime.now()

    def start(self, total: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("send", total=total, rate="", **self.counts)

    def advance(self, outcome: Outcome) -> None:
        key = {"would-send": "sent", "test": "sent"}.get(outcome.status, outcome.status)
        if key in self.counts:
            self.counts[key] += 1
        done = sum(self.counts.values())
        elapsed = max((datetime.now() - self.started).total_seconds(), 1e-6)
        self.bar.update(self.task, advance=1, rate=f"{done / elapsed:.1f}/s", **self.counts)

    def stop(self) -> None:
        self.bar.stop()


SUMMARY_ROWS = 50


def _summary_table(report: SendReport, dry_run: bool, to: str | None) -> Table:
    title = (
        "Dry run: nothing sent or recorded"
        if dry_run
        else (f"Test send to {to}: nothing recorded" if to else "Send summary")
    )
    rows = report.outcomes
    if report.total > SUMMARY_ROWS:  # a large run lists its failures, not every subscriber
        rows = report.failed[:SUMMARY_ROWS]
        title += f" (failures only, of {report.total} subscribers)"
    table = Table(title=title, title_justify="left")
    table.add_column("subscriber", no_wrap=True)  # whole, however narrow
    table.add_column("status")
    table.add_column("items", justify="right")
    table.add_column("size", justify="right")
    table.add_column("detail")
    for o in rows:
        style = {
            "failed": "red",
            "uncertain": "yellow",
            "sent": "green",
            "test": "green",
            "would-send": "cyan",
        }.get(o.status, "dim")
        detail = o.error or ("nothing new" if o.status == "skipped" else (o.message_id or ""))
        table.add_row(
            o.email,
            f"[{style}]{o.status}[/]",
            str(o.items) if o.items else "",
            f"{o.size / 1024:.1f} KB" if o.size else "",
            escape(detail),
        )
    return table


def _pickup_line(pickup: PickupReport, settings: Settings) -> str:
    """`Picked up 3 new item(s) (...).`, and the sources that failed, whose items are kept."""
    line = (
        f"Picked up {pickup.new} new item(s) ({pickup.total} read from "
        f"{pickup.files - pickup.unchanged - len(pickup.failed)} source file(s) or feed(s), "
        f"{pickup.unchanged} unchanged"
        + (f", {len(pickup.failed)} failed" if pickup.failed else "")
        + ")."
    )
    if pickup.failed:
        failed = ", ".join(label_of(f, source_for(f, settings.sources)) for f in pickup.failed)
        line += (
            f" Failed: {failed}; their earlier items are kept and they are read again next time."
        )
    return line


def _report_json(report: SendReport, dry_run: bool, to: str | None) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "dry_run": dry_run,
        "to": to,
        "picked_up": {
            "new": report.pickup.new,
            "total": report.pickup.total,
            "unchanged_sources": report.pickup.unchanged,
            "problems": [p.message for p in report.pickup.problems],
            "warnings": report.pickup.warnings,
            "failed_sources": report.pickup.failed,
            "dropped": report.pickup.dropped,
        },
        "sent": report.count("sent") + report.count("test"),
        "would_send": report.count("would-send"),
        "skipped": report.count("skipped"),
        "failed": report.count("failed"),
        "uncertain": report.count("uncertain"),
        "aborted": report.aborted,
        "warnings": report.warnings,
        "subscribers_total": report.total,
        "messages": {
            "bytes": report.message_bytes,
            "items": report.message_items,
            "max_items": report.max_items,
        },
        "subscribers": [
            {
                "email": o.email,
                "status": o.status,
                "items": o.items,
                "bytes": o.size,
                "message_id": o.message_id,
                "error": o.error,
                "attempts": o.attempts,
            }
            for o in report.listed()
        ],
    }


@click.command()
@config_option
@click.option(
    "--dry-run", is_flag=True, help="Build everything and report; send and record nothing."
)
@click.option("--only", "only", multiple=True, metavar="EMAIL", help="Only these subscribers.")
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    help="Send the digest(s) to this staff address for checking, '[TEST]' in the "
    "subject; records nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--wait",
    "wait",
    type=float,
    default=0.0,
    metavar="SECONDS",
    help="Wait this long for another running send instead of exiting.",
)
def send(
    settings: Settings,
    dry_run: bool,
    only: tuple[str, ...],
    to: str | None,
    as_json: bool,
    wait: float,
) -> None:
    """Pick up new items, build and deliver every subscriber's digest.

    \b
    Examples:
      digest send
      digest send --dry-run
      digest send --only ana@example.org --to editor@example.org
    """
    if to is not None and not valid_email(to):
        raise click.BadParameter(f"{to!r} is not an email address", param_hint="--to")
    label = "building (dry run)" if dry_run else "sending"
    progress = _RichProgress(enabled=not as_json and err.is_terminal, label=label)
    try:
        report = run_send(
            settings, dry_run=dry_run, only=only, to=to, progress=progress, lock_wait=wait
        )
    finally:
        progress.stop()
    print_problems(report.pickup.problems, "warning")
    for warning in (*report.pickup.warnings, *report.warnings):
        warn(warning)
    if as_json:
        print_json(_report_json(report, dry_run, to))
    else:
        out.print(_pickup_line(report.pickup, settings))
        out.print(_summary_table(report, dry_run, to))
        sent = report.count("sent") + report.count("test")
        line = (f"{report.count('would-send')} would be sent" if dry_run else f"{sent} sent") + (
            f", {report.count('skipped')} skipped (nothing new), {report.count('failed')} failed"
        )
        if report.count("uncertain"):
            line += f", {report.count('uncertain')} uncertain (resent once by the next run)"
        out.print(line + ".")
        if not dry_run and not to and sent == 0 and not report.failed and not report.aborted:
            out.print("Nothing new to send: every subscriber already has every matching item.")
        for o in report.failed:
            err.print(f"[red]{o.status}:[/] {o.email}: {escape(o.error or '')}", markup=True)
    if report.aborted:
        fail(report.aborted)
        sys.exit(report.abort_exit_code)
    sys.exit(0 if report.ok else 1)


@click.command()
@config_option
@click.option("--last", "last", type=int, default=5, show_default=True, help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option(
    "--bounces",
    "only_bounces",
    is_flag=True,
    help="Only the bounces per subscriber (with --json: a list of them).",
)
def history(settings: Settings, last: int, as_json: bool, only_bounces: bool) -> None:
    """Past runs with their counts, what each subscriber was sent, failures with the
    server's reply, and then the bounces and complaints recorded per subscriber."""
    if only_bounces:
        print_bounce_summaries(bounce_summaries(settings), as_json)
        return
    with reading(settings.state) as state:
        runs = state.runs(last) if state else []
        deliveries = {r.id: state.deliveries(run_id=r.id) for r in runs} if state else {}
    if as_json:
        print_json([_run_json(r, deliveries[r.id]) for r in runs])
        return
    if not runs:
        out.print("No runs yet.")
    for r in runs:
        finished = r.finished_at.strftime("%Y-%m-%d %H:%M:%S UTC") if r.finished_at else "-"
        table = Table(
            title=f"Run {r.id} ({r.kind}) {r.started_at:%Y-%m-%d %H:%M:%S} UTC -> {finished}: "
            f"{r.status}, {r.sent} sent, {r.failed} failed, {r.skipped} skipped"
            + (f" [{escape(r.note)}]" if r.note else ""),
            title_justify="left",
        )
        for column in ("subscriber", "status", "items", "when (UTC)", "server reply / Message-ID"):
            table.add_column(column)
        for d in deliveries[r.id]:
            table.add_row(
                d.subscriber,
                d.status,
                str(len(d.item_ids)),
                f"{d.updated_at:%Y-%m-%d %H:%M:%S}",
                escape(d.error or d.message_id),
            )
        out.print(table)
    summaries = bounce_summaries(settings)
    if summaries:
        print_bounce_summaries(summaries, as_json=False)


def _run_json(run: Any, deliveries: list[Any]) -> dict[str, Any]:
    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "finished_at": iso(run.finished_at),
        "sent": run.sent,
        "failed": run.failed,
        "skipped": run.skipped,
        "due_at": run.due_at,
        "note": run.note,
        "deliveries": [
            {
                "subscriber": d.subscriber,
                "status": d.status,
                "items": len(d.item_ids),
                "message_id": d.message_id,
                "error": d.error,
                "attempts": d.attempts,
                "at": d.updated_at.isoformat(),
            }
            for d in deliveries
        ],
    }
