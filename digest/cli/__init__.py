"""The `digest` command: a thin layer over the library, one module per group of commands.

Each module defines its commands; they are put on the `main` group here.
"""

from __future__ import annotations

from .bounces import bounces
from .items import check, items
from .main import main
from .preview import preview
from .schedule import run, schedule_command
from .send import history, send
from .state import state_group
from .web import serve, subscribers

COMMANDS = (
    send,
    preview,
    items,
    check,
    history,
    run,
    schedule_command,
    serve,
    subscribers,
    bounces,
)
for command in (*COMMANDS, state_group):
    main.add_command(command)

__all__ = ["main"]
