"""Everything the CLI prints goes through here: problems with their hints, warnings, JSON for
scripts and rich tables for people."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from ..errors import DigestError, ProblemList

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def problems_of(exc: DigestError) -> list[DigestError]:
    return exc.problems if isinstance(exc, ProblemList) else [exc]


def print_problem(problem: DigestError, level: str = "error") -> None:
    """`error: <message>` (or `warning:`) and its hint on the next line, on stderr."""
    label = "[bold red]error:[/]" if level == "error" else "[yellow]warning:[/]"
    err.print(f"{label} {escape(problem.message)}", markup=True, highlight=False)
    if problem.hint:
        err.print(f"  [dim]hint:[/] {escape(problem.hint)}", markup=True)


def print_problems(problems: Iterable[DigestError], level: str = "error") -> None:
    for problem in problems:
        print_problem(problem, level)


def warn(text: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(text)}", markup=True)


def fail(text: str) -> None:
    err.print(f"[bold red]error:[/] {escape(text)}", markup=True)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def print_json(data: Any) -> None:
    """JSON for scripts, on stdout, non-ASCII as it is."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
