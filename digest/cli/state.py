"""`digest state ...`: keeping the state safe."""

from __future__ import annotations

from pathlib import Path

import click

from ..clock import utcnow
from ..errors import SettingsError, StateError
from ..send.journal import fold_acceptances
from ..settings import Settings, load_settings
from ..state import State, exists, send_lock
from ..state.backup import backup as backup_state
from ..state.migrate import (
    copy_state,
    move_journal,
    ready_source,
    refuse_unless_empty,
    target_location,
)
from .main import config_path_option
from .output import out


@click.group("state")
@config_path_option
@click.pass_context
def state_group(ctx: click.Context, config_path: Path) -> None:
    """Keep the state (items seen, deliveries, runs, web changes) safe, and move it between
    SQLite and PostgreSQL."""
    ctx.obj = config_path


def state_value(value: str) -> str:
    from ..settings.values import state as check_state

    try:
        return check_state(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(
            f"--to: expected a path or postgresql://user@host:port/dbname ({exc})",
            hint="the password goes in the environment (state_password_env), never on the "
            "command line",
        ) from None


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


@state_group.command("migrate")
@config_path_option
@click.option("--to", "to", required=True, metavar="URL_OR_PATH", help="The empty new state.")
@click.pass_context
def migrate(ctx: click.Context, config_path: Path, to: str) -> None:
    """Copy the whole state to an empty PostgreSQL database, or from PostgreSQL to a new SQLite
    file: items, sources, runs, deliveries, web changes, the token secret, bounces,
    suppressions and the suppression journal. Stop `digest run` and `digest serve` first;
    then point `state` in digest.yaml at the new one. A send after the move repeats nothing.

    \b
    Examples:
      digest state migrate --to postgresql://digest@db.example.org/digest
      digest state migrate --to .digest/state.db
    """
    settings = _settings(ctx, config_path)
    checked = state_value(to)  # a bad URL: one line, exit 2
    target = target_location(checked, settings.state, settings.state_password_env)
    if str(target) == str(settings.state):
        raise StateError(f"{target}: that is the state in use", hint="name another one")
    if not exists(settings.state):
        raise StateError(f"{settings.state}: there is no state to move yet")
    with State(settings.state) as source:
        if not source.shared:
            with send_lock(settings.state):  # no send may run meanwhile
                fold_acceptances(source)
        ready_source(source)
        refuse_unless_empty(target)
        with State(target) as new:
            copied = copy_state(source, new)
            lines = move_journal(source, new)
    shown = ", ".join(f"{n} {table}" for table, n in copied.items() if n)
    out.print(f"Copied {settings.state} to {target}: {shown}; {lines} journal line(s).")
    out.print(f"Now set `state: {checked}` in {settings.path}.")
