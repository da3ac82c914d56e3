"""`digest state ...`: keeping the state safe."""

from __future__ import annotations

from pathlib import Path

import click

from ..clock import utcnow
from ..settings import Settings, load_settings
from ..state.backup import backup as backup_state
from .main import config_path_option
from .output import out


@click.group("state")
@config_path_option
@click.pass_context
def state_group(ctx: click.Context, config_path: Path) -> None:
    """Keep the state (items seen, deliveries, runs, web changes) safe."""
    ctx.obj = config_path


def _settings(ctx: click.Context, config_path: Path) -> Settings:
    """--config after the subcommand, else before it (`digest state --config X backup ...`)."""
    given = ctx.get_parameter_source("config_path") is not click.core.ParameterSource.DEFAULT
    return load_settings(config_path if given or ctx.obj is None else ctx.obj)


@state_group.command("backup")
@config_path_option
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_context
def backup(ctx: click.Context, config_path: Path, path: Path) -> None:
    """Copy the state to PATH (a file, or a folder for a dated file), safely while sends and
    `digest serve` run. The copy is checked before it is kept.

    \b
    Examples:
      digest state backup /var/backups/digest/
      digest state backup /var/backups/digest/state-$(date +%F).db
    """
    settings = _settings(ctx, config_path)
    written = backup_state(settings.state, path, utcnow())
    out.print(f"Backed up {settings.state} to {written} ({written.stat().st_size / 1024:.0f} KB).")
