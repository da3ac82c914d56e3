"""One send per state: an exclusive lock the OS releases when its holder dies."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import LockedError, StateError


@contextlib.contextmanager
def send_lock(state_path: Path, wait: float = 0.0) -> Iterator[None]:
    """Only one send per state file: an exclusive lock on `<state>.lock`, released by the OS
    even when the holder is killed. Waits up to `wait` seconds, then raises LockedError."""
    lock_path = Path(f"{state_path}.lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateError(
            f"{state_path}: cannot create the state's folder or its lock: {exc.strerror}",
            hint="check that the folder can be written, or set 'state' in the settings",
        ) from exc
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                    raise LockedError(
                        f"another send is running on {state_path} (process {holder})",
                        hint="wait for it to finish, or pass --wait SECONDS; "
                        "nothing was sent by this run",
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
