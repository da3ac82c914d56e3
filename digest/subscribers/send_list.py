"""The subscribers of one send, checked and in send order, in a temporary SQLite file.

No process holds a large list in memory: `subscribers.yaml` is read one entry at a time and
each valid subscriber is written here as it is checked (duplicates are found here too), the
web's changes laid over it, and each worker process reads back its share, one at a time, with
subscribers of the same preferences one after another (so a shared rendering is made once).
A file with any problem leaves no list: the error is raised and the file removed.

A file in the usual plain form is read by `plain` (a million entries in seconds); any other
file, and any file with a problem, by the exact reader (`file.iter_subscribers`), which
names every problem with its line.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sqlite3
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..models import Subscriber
from ..selection import preference_key
from ..settings import StateLocation
from ..state import BounceRecords, State, WebChanges, reading, suppressions
from ..taxonomy import Taxonomy
from .file import iter_subscribers, not_listed
from .merge import effective_subscribers
from .plain import FIELDS, Fields, NotPlain, plain_subscribers

SCHEMA = """
CREATE TABLE listed (  -- every address of the file, for duplicates
    folded TEXT NOT NULL,  -- the address casefolded
    line INTEGER NOT NULL,
    email TEXT NOT NULL  -- as written
);
CREATE TABLE profiles (  -- each set of preferences (a few thousand on any list)
    id INTEGER PRIMARY KEY,
    preferences TEXT NOT NULL,  -- preference_key as text: the send order
    bucket INTEGER NOT NULL,  -- a hash of it without the language: which worker sends
    data BLOB NOT NULL  -- PROFILE's values, pickled
);
CREATE TABLE subscribers (
    folded TEXT NOT NULL,
    profile INTEGER NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    frequency TEXT NOT NULL,
    line INTEGER NOT NULL
);
"""
BATCH = 2_000  # rows written at a time
PROFILES_KEPT = 65_536  # sets of preferences whose number is remembered
# A subscriber's preferences: what subscribers who share a rendering have alike.
PROFILE = ("regions", "topics", "group_by", "order", "timezone", "language", "item_languages")
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
        self._rows: list[tuple[str, int, str, str, str, int]] = []
        self._profiles: dict[tuple[object, ...], int] = {}  # see `_put_fields`

    @classmethod
    def open(cls, path: Path) -> SendList:
        return cls(path, sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True))

    @classmethod
    def build(
        cls,
        subscribers_file: Path,
        taxonomy: Taxonomy,
        state_file: StateLocation,
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
            db.execute("PRAGMA threads=2")  # the indexes sorted on both cores (a third faster)
            db.executescript(SCHEMA)
            db.execute("BEGIN")
            # The suppression journal and the state first, as the web's changes are read: a
            # damaged state stops the send before the list is read.
            suppressed = suppressions.suppressed(suppressions.journal_path(state_file))
            with reading(state_file) as state:
                if state is not None and state.shared:  # every host's lines, in the database
                    suppressed = suppressions.suppressed(suppressions.journal_of(state))
                send_list._fill(subscribers_file, taxonomy)
                send_list._lay_web_changes(state, suppressed, taxonomy)
            send_list._keep_only(only)
            db.execute("DROP TABLE listed")
            send_list._profiles.clear()  # a worker reads them back from the file
            db.execute("COMMIT")
            db.execute("CREATE INDEX send_order ON subscribers(profile)")  # then in file order
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

    def _fill(self, path: Path, taxonomy: Taxonomy) -> None:
        """The file's subscribers: read the quick way if it is in the plain form and valid,
        else (dropping what the quick way gave) the exact way, which raises its problems."""
        try:
            for fields in plain_subscribers(path, taxonomy):
                self._put_fields(fields)
            self._write()
            try:  # an address listed twice: the exact reader names both lines
                self.db.execute("CREATE UNIQUE INDEX by_address ON subscribers(folded)")
            except sqlite3.IntegrityError as exc:
                raise NotPlain from exc
        except NotPlain:
            self._rows.clear()
            self.db.execute("DROP INDEX IF EXISTS by_address")
            self.db.execute("DELETE FROM subscribers")
            for subscriber in iter_subscribers(path, taxonomy, seen=self):
                self._put(subscriber)
            self._write()
            self.db.execute("CREATE INDEX by_address ON subscribers(folded)")

    def _lay_web_changes(
        self, state: State | None, suppressed: frozenset[str], taxonomy: Taxonomy
    ) -> None:
        """`effective_subscribers` over the file's subscribers written here: the few the web
        touched, and the suppressed, are taken out, and the touched put back as the web
        changed them, with the web's own sign-ups."""
        web = WebChanges(state) if state is not None else None
        if state is not None:  # the state's suppressions too, should the journal have lost one
            suppressed = suppressed | frozenset(BounceRecords(state).suppressed())
        if not suppressed and (web is None or next(web.keys(), None) is None):
            return
        known = web.keys() if web is not None else iter(())
        self.db.execute("CREATE TEMP TABLE web_keys (key TEXT PRIMARY KEY)")
        for keys in (known, iter(suppressed)):
            self.db.executemany("INSERT OR IGNORE INTO web_keys VALUES (?)", ((k,) for k in keys))
        touched = self._by_address("web_keys")
        self.db.execute("DELETE FROM subscribers WHERE folded IN (SELECT key FROM web_keys)")
        self.db.execute("DROP TABLE web_keys")
        for subscriber in effective_subscribers(touched, state, taxonomy, suppressed):
            self._put(subscriber)
        self._write()

    def _put(self, subscriber: Subscriber) -> None:
        self._put_fields(tuple(getattr(subscriber, name) for name in FIELDS))  # type: ignore[arg-type]

    def _put_fields(self, fields: Fields) -> None:
        email, name, regions, topics, group_by, frequency, order, timezone = fields[:8]
        language, item_languages, line = fields[8:]
        # One number per set of preferences (tens of thousands on a list of a million: the
        # key is the tuples themselves, shared by every subscriber who wrote them alike).
        key = (regions, topics, group_by, order, timezone, language, item_languages, bool(name))
        profile = self._profiles.get(key)
        if profile is None:
            profile = self._profile(key, fields)
        self._rows.append((email.casefold(), profile, email, name, frequency, line))
        if len(self._rows) >= BATCH:
            self._write()

    def _profile(self, key: tuple[object, ...], fields: Fields) -> int:
        """A new set of preferences written to `profiles` (with the worker that sends it: a
        hash of its `preference_key`); its number."""
        subscriber = Subscriber(*fields)
        text = repr(preference_key(subscriber))
        data = tuple(getattr(subscriber, name) for name in PROFILE)
        pickled = pickle.dumps(data, pickle.HIGHEST_PROTOCOL)
        # The worker: readers of every language with the same preferences go to one, one
        # after another (the key without the language sorts first), sharing an arrangement.
        bucket = zlib.crc32(repr(preference_key(subscriber, language=False)).encode())
        cursor = self.db.execute(
            "INSERT INTO profiles(preferences, bucket, data) VALUES (?, ?, ?)",
            (text, bucket, pickled),
        )
        if len(self._profiles) >= PROFILES_KEPT:
            self._profiles.clear()
        profile = self._profiles[key] = int(cursor.lastrowid or 0)
        return profile

    def _write(self) -> None:
        self.db.executemany("INSERT INTO listed VALUES (?, ?, ?)", self._listed)
        self.db.executemany(
            "INSERT INTO subscribers VALUES (?, ?, ?, ?, ?, ?)",
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
        profiles = self.db.execute(
            "SELECT id, data FROM profiles WHERE bucket % ? = ? ORDER BY preferences, id",
            (shards, shard),
        )
        for profile, data in profiles:
            preferences = dict(zip(PROFILE, pickle.loads(data), strict=True))
            rows = self.db.execute(
                "SELECT email, name, frequency, line FROM subscribers WHERE profile = ? "
                "ORDER BY rowid",
                (profile,),
            )
            for email, name, frequency, line in rows:
                yield Subscriber(email, name, frequency=frequency, line=line, **preferences)

    def _by_address(self, keys: str) -> list[Subscriber]:
        """The subscribers whose addresses are in the table `keys`, in file order."""
        rows = self.db.execute(
            "SELECT s.email, s.name, s.frequency, s.line, p.data FROM subscribers AS s "
            f"JOIN profiles AS p ON p.id = s.profile WHERE s.folded IN (SELECT key FROM {keys}) "
            "ORDER BY s.rowid"
        ).fetchall()
        return [
            Subscriber(
                email,
                name,
                frequency=frequency,
                line=line,
                **dict(zip(PROFILE, pickle.loads(data), strict=True)),
            )  # fmt: skip
            for email, name, frequency, line, data in rows
        ]

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
