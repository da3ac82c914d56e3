"""The `digest` group: `--config` on every command, and the project's errors turned into a
message, a hint and an exit code (no traceback).

Exit codes: 0 all went out, 1 a subscriber failed (or another send holds the lock),
2 bad settings, subscribers, templates or input.
"""

from __future__ import annotations

import errno
import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import DigestError
from ..settings import load_settings
from .output import print_problems, problems_of

STATE_HINT = "run `digest check`; restore the state from a backup if it is damaged"

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


# What a person fixes on the machine: a full disk, a read-only folder, missing rights.
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class DigestGroup(click.Group):
    """Turns the project's errors into a message, a hint and an exit code (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            print_problems(problems_of(exc))
            ctx.exit(exc.exit_code)
        except sqlite3.DatabaseError as exc:  # failed mid-read, past the state's own checks
            print_problems([DigestError(f"the state database failed: {exc}", hint=STATE_HINT)])
            ctx.exit(2)
        except OSError as exc:
            if exc.errno not in _MACHINE_ERRNOS:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            hint = (
                "free some space"
                if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                else ("check the permissions of that file and its folder")
            )
            print_problems([DigestError(f"{where}{exc.strerror}", hint=hint + "; run again")])
            ctx.exit(2)


@click.group(cls=DigestGroup)
@click.version_option(package_name="digest")
def main() -> None:
    """Weekly regional migration-news digests: one email per subscriber, sent exactly once."""
