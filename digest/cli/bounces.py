"""`digest bounces` (read the bounce mailbox and act on it), `digest subscribers unsuppress`
(lift a suppression), and the bounces part of `digest history`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..bounces import IntakeReport, Processed, read_bounces
from ..clock import utcnow
from ..settings import Settings
from ..state import BounceRecords, State, reading
from ..subscribers import valid_email
from .main import config_option
from .output import err, out, print_json, print_problems
from .web import subscribers

SHOWN = 50  # mails listed one by one in the text output (the rest are counted)


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per mail (a line).")
@click.option("--dry-run", is_flag=True, help="Classify and report; change and move nothing.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def bounces(settings: Settings, as_json: bool, dry_run: bool, paths: tuple[Path, ...]) -> None:
    """Read new bounce mail, record it and apply the policy.

    Reads `bounces.mailbox` (a Maildir, default `bounces/` beside digest.yaml, or an
    imaps:// folder), or the files, Maildir folders and mbox files given. Each mail is a
    bounce, complaint, auto-reply or other; a hard bounce suppresses the subscriber,
    `soft_limit` soft bounces within `soft_window` do too, a complaint unsubscribes. Read
    mail moves from new/ to cur/ (never deleted); the same mail twice counts once.

    \b
    Examples:
      digest bounces
      digest bounces --dry-run --json saved/bounce.eml old-bounces.mbox
    """

    changed: list[Processed] = []

    def emit(result: Processed) -> None:
        if as_json:
            click.echo(json.dumps(result.to_json(), ensure_ascii=False))
        elif result.action != "none" and len(changed) <= SHOWN:
            changed.append(result)

    report = read_bounces(settings, list(paths), dry_run=dry_run, emit=emit)
    if not as_json:
        _print_changes(changed, report, dry_run)
        _print_report(report, dry_run)
    print_problems(report.problems)
    sys.exit(2 if report.problems else 0)


def _print_report(report: IntakeReport, dry_run: bool) -> None:
    if report.note:
        out.print(escape(report.note))
    kinds, actions = report.kinds, report.actions
    would = "would be " if dry_run else ""
    out.print(
        f"Read {report.mails} mail(s): {kinds['bounce']} bounce(s), {kinds['complaint']} "
        f"complaint(s), {kinds['auto-reply']} auto-reply(ies), {kinds['other']} other; "
        f"{actions['suppressed']} {would}suppressed, {actions['counted']} {would}counted, "
        f"{actions['unsubscribed']} {would}unsubscribed, {actions['none']} changed nothing"
        + (f", {report.duplicates} processed before" if report.duplicates else "")
        + "."
    )


def _print_changes(changed: list[Processed], report: IntakeReport, dry_run: bool) -> None:
    """One line per mail that changed something (the first SHOWN of them)."""
    prefix = "would be " if dry_run else ""
    for r in changed[:SHOWN]:
        out.print(f"{prefix}{r.action}: {escape(r.subscriber or '')}: {escape(r.reason)}")
    total = sum(n for action, n in report.actions.items() if action != "none")
    if total > SHOWN:
        out.print(f"... and {total - SHOWN} more")


@subscribers.command("unsuppress")
@config_option
@click.argument("email")
def unsuppress(settings: Settings, email: str) -> None:
    """Lift a suppression: send to EMAIL again (its mail bounced, or it was suppressed).

    Written to the state and to the suppression journal beside it.

    \b
    Example:
      digest subscribers unsuppress ana@example.org
    """
    if not valid_email(email):
        raise click.BadParameter(f"{email!r} is not an email address", param_hint="EMAIL")
    with State(settings.state) as state:
        records = BounceRecords(state)
        before = records.suppression(email)
        lifted = records.unsuppress(email, "staff", utcnow())
    if not lifted:
        err.print(f"{escape(email)} is not suppressed: nothing changed.")
        sys.exit(1)
    why = f" (was: {escape(before.reason)})" if before else ""
    out.print(f"{escape(email)} is no longer suppressed{why}; the next send includes it.")


def bounce_summaries(settings: Settings) -> list[dict[str, Any]]:
    """Per subscriber with bounce events: counts, the latest, and any suppression in force."""
    with reading(settings.state) as state:
        if state is None:
            return []
        records = BounceRecords(state)
        stopped = records.suppressed()
        rows = records.summaries()
    result = []
    for s in rows:
        suppression = stopped.get(s.email.strip().casefold())
        result.append(
            {
                "subscriber": s.email,
                "hard": s.hard,
                "soft": s.soft,
                "complaints": s.complaints,
                "auto_replies": s.auto_replies,
                "last_at": s.last_at.isoformat(),
                "last_kind": s.last_kind,
                "last_status": s.last_status,
                "last_reason": s.last_reason,
                "suppressed": f"suppressed: {suppression.reason}" if suppression else None,
            }
        )
    return result


def print_bounce_summaries(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No bounces recorded.")
        return
    table = Table(title="Bounces per subscriber", title_justify="left")
    for column in ("subscriber", "hard", "soft", "complaints", "auto-replies", "last", "state"):
        table.add_column(column)
    for r in rows:
        last = f"{r['last_at'][:10]} {r['last_kind']} {r['last_status'] or ''}".strip()
        table.add_row(
            escape(r["subscriber"]),
            str(r["hard"]),
            str(r["soft"]),
            str(r["complaints"]),
            str(r["auto_replies"]),
            escape(f"{last}: {r['last_reason'] or ''}"[:120]),
            escape(r["suppressed"] or "receives the digest"),
        )
    out.print(table)
