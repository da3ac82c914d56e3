"""The `digest` command: a thin layer over the library.

Exit codes: 0 all went out, 1 a subscriber failed (or another send holds the lock),
2 bad settings, subscribers, templates or input.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from . import pipeline
from .errors import DigestError, ProblemList
from .settings import Settings, load_settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


config_path_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("digest.yaml"),
    show_default=True,
    help="Settings file; relative paths inside it resolve against its folder.",
)


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--config on every command; loads the settings and passes them as `settings`."""

    @config_path_option
    @functools.wraps(command)
    def wrapper(*args: Any, config_path: Path, **kwargs: Any) -> Any:
        return command(*args, settings=load_settings(config_path), **kwargs)

    return wrapper


class DigestGroup(click.Group):
    """Turns the project's errors into a message, a hint and an exit code (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            problems = exc.problems if isinstance(exc, ProblemList) else [exc]
            for problem in problems:
                err.print(f"[bold red]error:[/] {problem.message}", markup=True, highlight=False)
                if problem.hint:
                    err.print(f"  [dim]hint:[/] {problem.hint}", markup=True)
            ctx.exit(exc.exit_code)


@click.group(cls=DigestGroup)
@click.version_option(package_name="digest")
def main() -> None:
    """Weekly regional migration-news digests: one email per subscriber, sent exactly once."""


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


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

    def advance(self, outcome: pipeline.Outcome) -> None:
        key = {"would-send": "sent", "test": "sent"}.get(outcome.status, outcome.status)
        if key in self.counts:
            self.counts[key] += 1
        done = sum(self.counts.values())
        elapsed = max((datetime.now() - self.started).total_seconds(), 1e-6)
        self.bar.update(self.task, advance=1, rate=f"{done / elapsed:.1f}/s", **self.counts)

    def stop(self) -> None:
        self.bar.stop()


SUMMARY_ROWS = 50


def _summary_table(report: pipeline.SendReport, dry_run: bool, to: str | None) -> Table:
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
    table.add_column("subscriber")
    table.add_column("status")
    table.add_column("items", justify="right")
    table.add_column("size", justify="right")
    table.add_column("detail")
    for o in rows:
        style = {"failed": "red", "sent": "green", "test": "green", "would-send": "cyan"}.get(
            o.status, "dim"
        )
        detail = o.error or ("nothing new" if o.status == "skipped" else (o.message_id or ""))
        table.add_row(
            o.email,
            f"[{style}]{o.status}[/]",
            str(o.items) if o.items else "",
            f"{o.size / 1024:.1f} KB" if o.size else "",
            _escape(detail),
        )
    return table


def _listed(report: pipeline.SendReport) -> list[pipeline.Outcome]:
    """The outcomes kept for the report, and every failure."""
    kept = {id(o) for o in report.outcomes}
    return report.outcomes + [o for o in report.failed if id(o) not in kept]


def _report_json(report: pipeline.SendReport, dry_run: bool, to: str | None) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "dry_run": dry_run,
        "to": to,
        "picked_up": {
            "new": report.pickup.new,
            "total": report.pickup.total,
            "problems": [p.message for p in report.pickup.problems],
        },
        "sent": report.count("sent") + report.count("test"),
        "would_send": report.count("would-send"),
        "skipped": report.count("skipped"),
        "failed": report.count("failed"),
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
            for o in _listed(report)
        ],
    }


def _print_source_problems(problems: list[Any]) -> None:
    for problem in problems:
        err.print(f"[yellow]warning:[/] {_escape(problem.message)}", markup=True)
        if problem.hint:
            err.print(f"  [dim]hint:[/] {_escape(problem.hint)}", markup=True)


@main.command()
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
    if to is not None:
        from .subscribers import valid_email

        if not valid_email(to):
            raise click.BadParameter(f"{to!r} is not an email address", param_hint="--to")
    label = "building (dry run)" if dry_run else "sending"
    progress = _RichProgress(enabled=not as_json and err.is_terminal, label=label)
    try:
        report = pipeline.send(
            settings, dry_run=dry_run, only=only, to=to, progress=progress, lock_wait=wait
        )
    finally:
        progress.stop()
    _print_source_problems(report.pickup.problems)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {_escape(warning)}", markup=True)
    if as_json:
        click.echo(json.dumps(_report_json(report, dry_run, to), indent=2))
    else:
        out.print(
            f"Picked up {report.pickup.new} new item(s) "
            f"({report.pickup.total} in {report.pickup.files} source file(s))."
        )
        out.print(_summary_table(report, dry_run, to))
        sent = report.count("sent") + report.count("test")
        line = (f"{report.count('would-send')} would be sent" if dry_run else f"{sent} sent") + (
            f", {report.count('skipped')} skipped (nothing new), {report.count('failed')} failed"
        )
        out.print(line + ".")
        if not dry_run and not to and sent == 0 and not report.failed and not report.aborted:
            out.print("Nothing new to send: every subscriber already has every matching item.")
        for o in report.failed:
            err.print(f"[red]failed:[/] {o.email}: {_escape(o.error or '')}", markup=True)
    if report.aborted:
        err.print(f"[bold red]error:[/] {_escape(report.aborted)}", markup=True)
        sys.exit(2)
    sys.exit(0 if report.ok else 1)


@main.command()
@config_option
@click.option("--only", "only", multiple=True, metavar="EMAIL", help="Only these subscribers.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("preview"),
    show_default=True,
    help="Folder for the files.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the previews in the browser on 127.0.0.1 instead of writing files; pages "
    "reload when a template, the settings, the subscribers or an item file changes.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8025,
    show_default=True,
    help="Port for --serve (0: any free port).",
)
@click.option("--open", "open_browser", is_flag=True, help="With --serve: open the browser.")
def preview(
    settings: Settings,
    only: tuple[str, ...],
    out_dir: Path,
    serve: bool,
    port: int,
    open_browser: bool,
) -> None:
    """Render every digest to files without sending or recording anything.

    Writes <address>.mjml (after Jinja2, before compiling), .html, .txt and .eml per
    subscriber into --out. With --serve, shows them in the browser instead: every
    subscriber, each email at desktop and phone width, its headers, text part and size,
    and a button that sends a test copy.

    \b
    Examples:
      digest preview
      digest preview --only ana@example.org --out /tmp/preview
      digest preview --serve --open
    """
    ctx = click.get_current_context()
    given = {
        name
        for name in ("only", "out_dir", "port", "open_browser")
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    if serve:
        if given & {"only", "out_dir"}:
            raise click.UsageError("--only and --out write files; they do not go with --serve")
        from .preview import serve as serve_preview

        serve_preview(settings, port=port, open_browser=open_browser)
        return
    if given & {"port", "open_browser"}:
        raise click.UsageError("--port and --open need --serve")
    results = pipeline.write_preview(settings, out_dir, only)
    table = Table(title=f"Preview in {out_dir}", title_justify="left")
    for column in ("subscriber", "items", "html", "subject"):
        table.add_column(column)
    for r in results:
        if r.prepared is None:
            table.add_row(r.subscriber.email, "0", "", "[dim]nothing new: no email[/]")
        else:
            rendered = r.prepared.rendered
            table.add_row(
                r.subscriber.email,
                str(rendered.shown),
                f"{len(rendered.html.encode()) / 1024:.1f} KB",
                _escape(rendered.subject),
            )
    out.print(table)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.option("--no-pickup", is_flag=True, help="List the state as it is, without reading sources.")
def items(settings: Settings, as_json: bool, no_pickup: bool) -> None:
    """Pick up new items and list them with their regions, topics and the words that matched."""
    from .state import State
    from .taxonomy import load_taxonomy

    taxonomy = load_taxonomy(settings.taxonomy)
    with State(settings.state) as state:
        if not no_pickup:
            report = pipeline.pick_up(settings, state, taxonomy, pipeline.utcnow())
            _print_source_problems(report.problems)
        tagged = pipeline.tagged_items(state, taxonomy)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": t.id,
                        "title": t.item.title,
                        "date": t.item.date.isoformat(),
                        "link": t.item.link,
                        "regions": list(t.regions),
                        "topics": list(t.topics),
                        "region_wide": t.region_wide,
                        "matches": {k: list(v) for k, v in t.matches.items()},
                        "summary": t.item.summary,
                        "source": t.item.source,
                        "first_seen": t.first_seen.isoformat() if t.first_seen else None,
                    }
                    for t in tagged
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"{len(tagged)} item(s)", title_justify="left", show_lines=True)
    table.add_column("date", no_wrap=True)
    table.add_column("title")
    table.add_column("regions")
    table.add_column("topics")
    for t in tagged:

        def show(names: tuple[str, ...], t: Any = t) -> str:
            return "\n".join(f"{n} [dim]({', '.join(t.matches.get(n, ()))})[/]" for n in names)

        table.add_row(
            t.item.date.isoformat(),
            _escape(t.item.title),
            show(t.regions) or "[dim]region-wide[/]",
            show(t.topics) or "[dim]none[/]",
        )
    out.print(table)


@main.command()
@config_option
def check(settings: Settings) -> None:
    """Validate settings, subscribers, templates and sources; list every problem.

    Exit 0 when all is well (warnings included), 2 when anything must be fixed.
    """
    from .checks import run_checks

    problems, warnings, notes = run_checks(settings)
    for note in notes:
        out.print(f"[green]ok[/] {_escape(note)}", markup=True)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {_escape(warning)}", markup=True)
    for problem in problems:
        err.print(f"[bold red]error:[/] {_escape(problem.message)}", markup=True)
        if problem.hint:
            err.print(f"  [dim]hint:[/] {_escape(problem.hint)}", markup=True)
    if problems:
        err.print(f"{len(problems)} problem(s) found; nothing would be sent.")
        sys.exit(2)
    out.print("All checks passed.")


@main.command()
@config_option
@click.option("--last", "last", type=int, default=5, show_default=True, help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def history(settings: Settings, last: int, as_json: bool) -> None:
    """Past runs with their counts, what each subscriber was sent, and failures with the
    server's reply."""
    from .state import State

    if not settings.state.is_file():
        out.print("No runs yet.")
        return
    with State(settings.state) as state:
        runs = state.runs(last)
        deliveries = {r.id: state.deliveries(run_id=r.id) for r in runs}
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "kind": r.kind,
                        "status": r.status,
                        "started_at": r.started_at.isoformat(),
                        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                        "sent": r.sent,
                        "failed": r.failed,
                        "skipped": r.skipped,
                        "due_at": r.due_at,
                        "note": r.note,
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
                            for d in deliveries[r.id]
                        ],
                    }
                    for r in runs
                ],
                indent=2,
            )
        )
        return
    if not runs:
        out.print("No runs yet.")
    for r in runs:
        finished = r.finished_at.strftime("%Y-%m-%d %H:%M:%S UTC") if r.finished_at else "-"
        table = Table(
            title=f"Run {r.id} ({r.kind}) {r.started_at:%Y-%m-%d %H:%M:%S} UTC -> {finished}: "
            f"{r.status}, {r.sent} sent, {r.failed} failed, {r.skipped} skipped"
            + (f" [{_escape(r.note)}]" if r.note else ""),
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
                _escape(d.error or d.message_id),
            )
        out.print(table)


# Commands kept in their own modules register themselves on `main` when imported.
from . import cli_schedule, cli_web  # noqa: E402, F401
