"""The subscribers of one send, checked and in send order, in a temporary SQLite file.

No process holds a large list in memory: `subscribers.yaml` is read one entry at a time and
each valid subscriber is written here as it is checked (duplicates are found here too), the
web's changes laid over it, and each worker process reads back its share, one at a time, with
subscribers of the same preferences one after another (so a shared rendering is made once).
A file with any problem leaves no list: the error is raised and the file removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import sqlite3
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..models import Subscriber
from ..selection import preference_key
from ..taxonomy import Taxonomy
from .file import iter_subscribers, not_listed
from .merge import with_web_changes

SCHEMA = """
CREATE TABLE listed (  -- every address of the file, for duplicates
    folded TEXT NOT NULL,  -- the address casefolded
    line INTEGER NOT NULL,
    email TEXT NOT NULL  -- as written
);
CREATE TABLE subscribers (
    folded TEXT NOT NULL,
    preferences TEXT NOT NULL,  -- preference_key: the send order
    bucket INTEGER NOT NULL,  -- a hash of it without the language: which worker sends
    data BLOB NOT NULL  -- the Subscriber's fields, pickled
);
"""
FIELDS = tuple(f.name for f in dataclasses.fields(Subscriber))
BATCH = 2_000  # rows written at a time
DUPLICATES = """
SELECT later.email, later.line, first.line FROM listed AS later
JOIN (SELECT folded, MIN(line) AS line FROM listed GROUP BY folded HAVING COUNT(*) > 1) AS first
    ON later.folded = first.folded AND later.line > first.line
ORDER BY later.line
"""


class SendList:
    """A temporary file of subscribers; `build` makes one, a worker opens it with the path."""

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path, self.db = path, db
        self._listed: list[tuple[str, int, str]] = []  # not written yet
        self._rows: list[tuple[str, str, int, bytes]] = []

    @classmethod
    def open(cls, path: Path) -> SendList:
        return cls(path, sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True))

    @classmethod
    def build(
        cls,
        subscribers_file: Path,
        taxonomy: Taxonomy,
        state_file: Path,
        only: Iterable[str] = (),
    ) -> SendList:
        """Check the file and lay the web's changes (read from the state, never written) over
        it; with `only`, keep just those addresses (each must be on the list)."""
        handle, name = tempfile.mkstemp(prefix="digest-send-", suffix=".db")
        os.close(handle)
        path = Path(name)
        db = sqlite3.connect(path, isolation_level=None)
        send_list = cls(path, db)
        try:
            db.execute("PRAGMA journal_mode=OFF")  # a scratch file: rebuilt if anything fails
            db.execute("PRAGMA synchronous=OFF")
            db.execute("PRAGMA cache_size=-4000")  # KB, whatever the number of subscribers
            db.executescript(SCHEMA)
            db.execute("BEGIN")
            checked = iter_subscribers(subscribers_file, taxonomy, seen=send_list)
            for subscriber in with_web_changes(checked, state_file, taxonomy):
                send_list._put(subscriber)
            send_list._write()
            send_list._keep_only(only)
            db.execute("DROP TABLE listed")
            db.execute("COMMIT")
            db.execute("CREATE INDEX send_order ON subscribers(preferences, folded)")
        except BaseException:
            send_list.remove()
            raise
        return send_list

    # -- building ---------------------------------------------------------------------------
    def first_listed(self, folded: str, line: int, email: str) -> None:
        """Lists the address; duplicates are found once every entry is read (`duplicates`)."""
        self._listed.append((folded, line, email))
        if len(self._listed) >= BATCH:
            self._write()

    def duplicates(self) -> list[tuple[str, int, int]]:
        """(address, line, line first listed on) of every later listing of an address."""
        self._write()
        return [(email, line, first) for email, line, first in self.db.execute(DUPLICATES)]

    def _put(self, subscriber: Subscriber) -> None:
        preferences = repr(preference_key(subscriber))
        fields = tuple(getattr(subscriber, name) for name in FIELDS)
        self._rows.append(
            (
                subscriber.email.casefold(),
                preferences,
                zlib.crc32(repr(preference_key(subscriber, language=False)).encode()),
                pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL),
            )
        )
        if len(self._rows) >= BATCH:
            self._write()

    def _write(self) -> None:
        self.db.executemany("INSERT INTO listed VALUES (?, ?, ?)", self._listed)
        self.db.executemany(
            "INSERT INTO subscribers(folded, preferences, bucket, data) VALUES (?, ?, ?, ?)",
            self._rows,
        )
        self._listed.clear()
        self._rows.clear()

    def _keep_only(self, only: Iterable[str]) -> None:
        wanted = {o.casefold() for o in only}
        if not wanted:
            return
        self.db.execute("CREATE TEMP TABLE wanted (folded TEXT PRIMARY KEY)")
        self.db.executemany("INSERT INTO wanted VALUES (?)", [(w,) for w in wanted])
        missing = [
            r[0]
            for r in self.db.execute(
                "SELECT folded FROM wanted WHERE folded NOT IN (SELECT folded FROM subscribers)"
            )
        ]
        if missing:
            raise not_listed(missing)
        self.db.execute("DELETE FROM subscribers WHERE folded NOT IN (SELECT folded FROM wanted)")

    # -- reading ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0])

    def read(self, shard: int = 0, shards: int = 1) -> Iterator[Subscriber]:
        """The subscribers of one worker's share, in send order: by preferences (a shared
        rendering is needed only briefly), each set of preferences sent by one worker."""
        rows = self.db.execute(
            "SELECT data FROM subscribers WHERE bucket % ? = ? ORDER BY preferences, folded",
            (shards, shard),
        )
        for (data,) in rows:
            yield Subscriber(*pickle.loads(data))

    def close(self) -> None:
        self.db.close()

    def remove(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> SendList:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
