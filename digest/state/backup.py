"""`digest state backup`: a consistent copy of the state, taken while sends and `digest serve`
keep running (SQLite's online backup), written whole or not at all."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from datetime import datetime
from pathlib import Path

from ..errors import StateError
from .integrity import check_file, integrity_problems, translate


def backup(state_path: Path, target: Path, now: datetime) -> Path:
    """Copy the state to `target` (a file, or a folder that gets `state-YYYYMMDD-HHMMSS.db`).
    Refuses a damaged state, and checks the copy. Returns the file written."""
    if not state_path.exists():
        raise StateError(f"{state_path}: there is no state to back up yet", hint="run a send first")
    check_file(state_path)
    if target.is_dir():
        target = target / f"state-{now:%Y%m%d-%H%M%S}.db"
    target = target.absolute()
    if not target.parent.is_dir():
        raise StateError(f"{target.parent}: no such folder for the backup")
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    try:
        source = sqlite3.connect(f"{state_path.absolute().as_uri()}?mode=ro", uri=True)
        copy = sqlite3.connect(temporary)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        damage = integrity_problems(Path(temporary))
        if damage:
            raise StateError(
                f"{state_path}: the copy failed SQLite's integrity check: {'; '.join(damage[:3])}",
                hint="the state itself may be damaged: run `digest check`",
            )
        os.replace(temporary, target)
    except sqlite3.Error as exc:
        raise translate(exc, state_path) from exc
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
