"""`digest items` (the items and why each was tagged) and `digest check` (every problem)."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..checks import run_checks
from ..clock import utcnow
from ..models import TaggedItem
from ..send import pick_up, tagged_items
from ..settings import Settings
from ..sources import source_for
from ..state import State
from ..taxonomy import load_taxonomy
from .main import config_option
from .output import err, iso, out, print_json, print_problems, warn


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.option("--no-pickup", is_flag=True, help="List the state as it is, without reading sources.")
def items(settings: Settings, as_json: bool, no_pickup: bool) -> None:
    """Pick up new items and list them with their regions, topics and the words that matched."""
    taxonomy = load_taxonomy(settings.taxonomy)
    with State(settings.state) as state:
        if not no_pickup:
            report = pick_up(settings, state, taxonomy, utcnow())
            print_problems(report.problems, "warning")
            for warning in report.warnings:
                warn(warning)
            if report.dropped:
                warn(f"{report.dropped} item(s) left out: they match no topic and their source "
                     "says require_topic")  # fmt: skip
        tagged = tagged_items(state, taxonomy, settings)
    if as_json:
        print_json([_item_json(t, settings) for t in tagged])
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
            escape(t.item.title),
            show(t.regions) or "[dim]region-wide[/]",
            show(t.topics) or "[dim]none[/]",
        )
    out.print(table)


def _item_json(t: TaggedItem, settings: Settings) -> dict[str, Any]:
    source = source_for(t.item.source, settings.sources)
    return {
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
        "source_name": source.name if source is not None and source.name else t.item.source,
        "language": t.item.language,
        "withheld": dict(t.withheld),
        "first_seen": iso(t.first_seen),
    }


@click.command()
@config_option
def check(settings: Settings) -> None:
    """Validate settings, subscribers, templates and sources; list every problem.

    Exit 0 when all is well (warnings included), 2 when anything must be fixed.
    """
    report = run_checks(settings)
    for note in report.notes:
        out.print(f"[green]ok[/] {escape(note)}", markup=True)
    for warning in report.warnings:
        warn(warning)
    print_problems(report.problems)
    if report.problems:
        err.print(f"{len(report.problems)} problem(s) found; nothing would be sent.")
        sys.exit(2)
    out.print("All checks passed.")
