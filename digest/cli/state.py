"""`digest state ...`: keeping the state safe."""

from __future__ import annotations

from pathlib import Path

import click

from ..clock import utcnow
from ..settings import Settings
from ..state.backup import backup as backup_state
from .main import config_option
from .output import out


@click.group("state")
def state_group() -> None:
    """Keep the state (items seen, deliveries, runs, web changes) safe.

    Each subcommand takes --config PATH (default ./digest.yaml), like every command.
    """


@state_group.command("backup")
@config_option
@click.argument("path", type=click.Path(path_type=Path))
def backup(settings: Settings, path: Path) -> None:
    """Copy the state to PATH (a file, or a folder for a dated file), safely while sends and
    `digest serve` run. The copy is checked before it is kept.

    \b
    Examples:
      digest state backup /var/backups/digest/
      digest state backup /var/backups/digest/state-$(date +%F).db
    """
    written = backup_state(settings.state, path, utcnow())
    out.print(f"Backed up {settings.state} to {written} ({written.stat().st_size / 1024:.0f} KB).")
