"""Watching the inputs: a token that moves when a watched file changes, the current snapshot
rebuilt when it does, and the long-poll that waits for it to move."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from ..clock import utcnow
from ..settings import Settings
from ..sources import expand
from .snapshot import Snapshot, build_snapshot

POLL_TIMEOUT = 25.0  # seconds a /__changes request waits before answering "no change"
POLL_INTERVAL = 0.25  # how often the files are looked at while someone waits
SNAPSHOT_MAX_AGE = 60.0  # rebuild at least this often: the lookback window moves with the clock


def _editor_litter(path: Path) -> bool:
    """Swap and backup files editors write beside the one being edited."""
    name = path.name
    return name.startswith((".", "#")) or name.endswith(("~", ".swp", ".swx")) or name == "4913"


def watched_files(config: Path, settings: Settings | None) -> list[Path]:
    """Every file whose change changes a preview. Feed URLs are not watched."""
    paths = [config]
    if settings is None:
        return paths
    paths.append(settings.subscribers)
    if settings.taxonomy is not None:
        paths.append(settings.taxonomy)
    if settings.templates.is_dir():
        paths += sorted(
            p for p in settings.templates.rglob("*") if p.is_file() and not _editor_litter(p)
        )
    for source in settings.sources:
        if not source.is_url:
            paths += [Path(p) for p in expand(source.path)]
    if isinstance(settings.state, Path):  # a PostgreSQL state is not a file to watch
        paths += [settings.state, settings.state.with_name(settings.state.name + "-wal")]
    return paths


def fingerprint(paths: Iterable[Path]) -> str:
    """A short token that changes when any of the files is edited, added or removed."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            digest.update(f"{path}\0-\n".encode())
            continue
        # An empty SQLite -wal appears when the state is opened read-only: not a change.
        if stat.st_size == 0 and path.name.endswith("-wal"):
            digest.update(f"{path}\0-\n".encode())
            continue
        digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
    return digest.hexdigest()[:20]


class Watcher:
    """The settings file and what it names: the current snapshot, and waiting for a change.

    Requests share it across threads. Held long-polls share one look at the files per
    `POLL_INTERVAL`, so many open pages cost no more than one.
    """

    def __init__(
        self,
        config: Path,
        settings: Settings | None = None,
        *,
        poll_timeout: float = POLL_TIMEOUT,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = Path(config).absolute()
        self.settings = settings  # the last settings that loaded: they say what to watch
        self.poll_timeout = poll_timeout
        self.clock = clock
        self.stopping = threading.Event()  # set when the server stops: held polls answer
        self.waiting = 0  # /__changes requests being held now
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._built_at = 0.0
        self._poll_lock = threading.Lock()
        self._polled = ("", 0.0)  # the last token a long-poll saw, and when

    def token(self) -> str:
        """The watched files' token now."""
        return fingerprint(watched_files(self.config, self.settings))

    def snapshot(self) -> Snapshot:
        """The current snapshot, rebuilt when a watched file changed (or it is a minute old)."""
        with self._lock:
            token = self.token()  # taken before reading the files, so no edit is missed
            current = self._snapshot
            fresh = time.monotonic() - self._built_at < SNAPSHOT_MAX_AGE
            if current is not None and current.token == token and fresh:
                return current
            snapshot = build_snapshot(self.config, token, self.clock())
            if snapshot.settings is not None and snapshot.settings != self.settings:
                # New settings may watch other files: build once more, the token taken over them.
                self.settings = snapshot.settings
                snapshot = build_snapshot(self.config, self.token(), self.clock())
            self._snapshot, self._built_at = snapshot, time.monotonic()
            return snapshot

    def wait_for_change(self, since: str | None) -> str:
        """The current token once it differs from `since` (or after `poll_timeout`)."""
        deadline = time.monotonic() + self.poll_timeout
        token = self.token()
        with self._poll_lock:
            self.waiting += 1
        try:
            while since is not None and token == since and not self.stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.stopping.wait(min(POLL_INTERVAL, remaining))
                token = self._shared_token()
        finally:
            with self._poll_lock:
                self.waiting -= 1
        return token

    def _shared_token(self) -> str:
        """The token, looked up at most once per interval however many polls are held."""
        with self._poll_lock:
            token, at = self._polled
            if time.monotonic() - at >= POLL_INTERVAL / 2:
                token = self.token()
                self._polled = (token, time.monotonic())
            return token
