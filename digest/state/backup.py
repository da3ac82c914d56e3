"""`digest state backup`: a consistent copy of the state, taken while sends and `digest serve`
keep running (SQLite's online backup), written whole or not at all. A PostgreSQL state is
copied by the server's own `pg_dump` (its custom format, for `pg_restore`)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

from ..errors import StateError
from ..settings import PostgresState, StateLocation
from .integrity import check_file, integrity_problems, translate


def backup(state: StateLocation, target: Path, now: datetime) -> Path:
    """Copy the state to `target` (a file, or a folder that gets `state-YYYYMMDD-HHMMSS.db`,
    or `.dump` for PostgreSQL). Refuses a damaged state, and checks the copy. Returns the
    file written."""
    if isinstance(state, PostgresState):
        return _dump(state, target, now)
    return _backup(state, target, now)


def _dump(state: PostgresState, target: Path, now: datetime) -> Path:
    """`pg_dump --format=custom` of the database, written whole or not at all."""
    if shutil.which("pg_dump") is None:
        raise StateError(
            f"{state}: a PostgreSQL state is backed up with pg_dump, which is not installed here",
            hint="install PostgreSQL's client (apt-get install postgresql-client), or run "
            f"pg_dump -Fc -h {state.host.rpartition(':')[0]} -p {state.host.rpartition(':')[2]} "
            f"{state.database} > state.dump where it is",
        )
    target, temporary = _place(target, now, "dump")
    env = dict(os.environ)
    if os.environ.get(state.password_env):
        env["PGPASSWORD"] = os.environ[state.password_env]
    try:
        done = subprocess.run(
            ["pg_dump", "--format=custom", f"--file={temporary}", f"--dbname={state.url}"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise StateError(
                f"{state}: pg_dump failed: {' '.join(done.stderr.split())[:300]}",
                hint="check that pg_dump's version is the server's or newer, and the login",
            )
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


def _backup(state_path: Path, target: Path, now: datetime) -> Path:
    if not state_path.exists():
        raise StateError(f"{state_path}: there is no state to back up yet", hint="run a send first")
    check_file(state_path)
    target, temporary = _place(target, now, "db")
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


def _place(target: Path, now: datetime, suffix: str) -> tuple[Path, str]:
    """Where a backup goes (a folder gets a dated file name) and the temporary file beside it
    that is renamed over it once complete, so a failed backup leaves no half-written file."""
    if target.is_dir():
        target = target / f"state-{now:%Y%m%d-%H%M%S}.{suffix}"
    target = target.absolute()
    if not target.parent.is_dir():
        raise StateError(f"{target.parent}: no such folder for the backup")
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    return target, temporary
