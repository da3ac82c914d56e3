"""Every table of the state, the web's included, and the migrations of older state files.

`SCHEMA` is the current shape: a new file is made with it and marked `LATEST`; an older file
is brought up to date by each `MIGRATIONS[n]` above its `user_version`, in order, then SCHEMA
adds what is missing (CREATE ... IF NOT EXISTS). A migration is SQL, or a function of the
connection where it depends on what the file holds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..clock import stamp, utcnow

Migration = str | Callable[[sqlite3.Connection], None]


def add_columns(table: str, *columns: tuple[str, str]) -> Callable[[sqlite3.Connection], None]:
    """A migration adding columns to a table, where the table exists (else SCHEMA makes it
    whole) and the column does not yet."""

    def migrate(db: sqlite3.Connection) -> None:
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not have:
            return
        for name, declaration in columns:
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")

    return migrate


# Bounces and complaints (issue 18): each mail read once (by its content's fingerprint), the
# events it meant per subscriber, and who is suppressed and why. Also the index that finds a
# delivery by the Message-ID a bounce returns (written once per delivery, never on a status
# change).
BOUNCE_TABLES = """
CREATE TABLE IF NOT EXISTS bounce_mails (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,  -- sha256 of the mail (line ends as LF): read twice, once
    kind TEXT NOT NULL,      -- bounce | complaint | auto-reply | other
    file TEXT NOT NULL,      -- where it was read: a file, PATH#N of an mbox, imaps://...;UID=N
    at TEXT NOT NULL,        -- when it was processed
    subscriber TEXT,         -- whom it was attributed to, or NULL
    action TEXT NOT NULL,    -- suppressed | counted | unsubscribed | none
    details TEXT NOT NULL    -- JSON: recipients, reason, how it was attributed
);
CREATE TABLE IF NOT EXISTS bounce_events (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,       -- the subscriber's address, casefolded
    email TEXT NOT NULL,
    mail_id INTEGER NOT NULL REFERENCES bounce_mails(id),
    delivery_id INTEGER,     -- the digest it bounced (VERP or Message-ID), or NULL
    at TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint', 'auto-reply')),
    status TEXT,             -- RFC 3463, e.g. 5.1.1
    code INTEGER,            -- SMTP reply code, e.g. 550
    reason TEXT
);
CREATE INDEX IF NOT EXISTS bounce_events_by_key ON bounce_events(key, id);
CREATE TABLE IF NOT EXISTS suppressions (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,       -- the address, casefolded
    email TEXT NOT NULL,
    reason TEXT NOT NULL,    -- e.g. "hard bounce 5.1.1 on 2026-12-03"
    at TEXT NOT NULL,
    mail_id INTEGER REFERENCES bounce_mails(id),
    lifted_at TEXT,          -- set: sends go to the address again
    lifted_via TEXT          -- staff | confirm-page
);
CREATE UNIQUE INDEX IF NOT EXISTS suppressions_in_force ON suppressions(key)
    WHERE lifted_at IS NULL;
CREATE INDEX IF NOT EXISTS deliveries_by_message_id ON deliveries(message_id);
"""

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    date TEXT NOT NULL,
    summary TEXT NOT NULL,
    link TEXT,
    source TEXT NOT NULL,
    regions TEXT NOT NULL,
    topics TEXT NOT NULL,
    categories TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    language TEXT,
    content_hash TEXT,   -- of what the source said: an unchanged item is not written again
    tags TEXT,           -- JSON: regions, topics, matches, withheld, as last tagged
    tagged_with TEXT     -- the taxonomy's fingerprint then: another one means tag again
);
-- What each source was when last read, so an unchanged one is not read again.
CREATE TABLE IF NOT EXISTS sources (
    location TEXT PRIMARY KEY,
    fingerprint TEXT,    -- a file's size, time and content hash
    etag TEXT,           -- a feed URL's, for a conditional GET
    last_modified TEXT,
    checked_at TEXT NOT NULL,
    error TEXT           -- why the last read failed, or NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    sent INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    due_at TEXT,
    note TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    subscriber TEXT NOT NULL,
    message_id TEXT NOT NULL,
    -- uncertain: sent whole, but no reply to its end came; resent once by a later run
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'uncertain')),
    item_ids TEXT NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    resent INTEGER NOT NULL DEFAULT 0, -- 1: an uncertain message being sent its one more time
    -- JSON: what the digest was made for (name, settings, period, language), so `digest serve`
    -- can show it again in the browser
    profile TEXT,
    -- JSON list: the stories past `max_items`, listed on the web page the digest links to
    -- (they count as sent); NULL when there were none
    more_ids TEXT
);
-- A status change touches neither index: the pending one holds just the few unfinished rows.
CREATE INDEX IF NOT EXISTS deliveries_of_subscriber ON deliveries(subscriber);
CREATE INDEX IF NOT EXISTS deliveries_unfinished ON deliveries(id)
    WHERE status IN ('pending', 'uncertain');
CREATE INDEX IF NOT EXISTS deliveries_by_run ON deliveries(run_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- What subscribers changed on the web (`digest serve`), laid over subscribers.yaml.
CREATE TABLE IF NOT EXISTS web_subscribers (
    key TEXT PRIMARY KEY,              -- the address, casefolded
    email TEXT NOT NULL,               -- the address as the subscriber wrote it
    prefs TEXT NOT NULL DEFAULT '{}',  -- settings changed on the web, JSON {"regions": [...]}
    pending TEXT,                      -- a sign-up's settings, waiting for its confirmation
    pending_at TEXT,
    pending_nonce TEXT,                -- that sign-up's id, signed into its confirmation link
    confirmed_at TEXT,                 -- set: the address proved it wants the digest
    unsubscribed_at TEXT,              -- set: nothing is sent, whatever the file says
    unsubscribed_via TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS web_events (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,   -- signup | confirm | preferences | unsubscribe | resubscribe
    via TEXT NOT NULL,      -- one-click | unsubscribe-page | preferences | signup | confirm-page
    client TEXT,            -- the client's address, kept for sign-up and confirmation only
    detail TEXT
);
CREATE INDEX IF NOT EXISTS web_events_by_key ON web_events(key, id);
"""
    + BOUNCE_TABLES
)


# State files written before version 1 kept a row per item sent (`sent_items`), the same
# facts as the deliveries' item lists, and an index that every status change rewrote.
MIGRATIONS: dict[int, Migration] = {
    1: """
DROP TABLE IF EXISTS sent_items;
DROP INDEX IF EXISTS deliveries_by_subscriber;
""",
    # Version 2 knows a delivery whose end was never answered (`uncertain`), and that it was
    # resent: the table is rebuilt for the new CHECK and column (SQLite cannot alter them).
    2: """
CREATE TABLE deliveries_v2 (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    subscriber TEXT NOT NULL,
    message_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'uncertain')),
    item_ids TEXT NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    resent INTEGER NOT NULL DEFAULT 0
);
INSERT INTO deliveries_v2(id, run_id, subscriber, message_id, status, item_ids, error, attempts,
    created_at, updated_at)
    SELECT id, run_id, subscriber, message_id, status, item_ids, error, attempts, created_at,
    updated_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v2 RENAME TO deliveries;
""",
    # Version 3 gives each sign-up an id, so a confirmation link confirms only its own.
    3: add_columns("web_subscribers", ("pending_nonce", "TEXT")),
    # Version 4 keeps each item's language, content hash and tags, and each source's
    # fingerprint (SCHEMA adds that table), so unchanged sources and items cost nothing.
    4: add_columns(
        "items",
        ("language", "TEXT"),
        ("content_hash", "TEXT"),
        ("tags", "TEXT"),
        ("tagged_with", "TEXT"),
    ),
    # Version 6 (5 is issue 16's) records bounce mails, bounce events and suppressions.
    6: BOUNCE_TABLES,
    # Version 8 keeps what each digest was made for (issue 20: "view in browser"), and when
    # links began to be opaque: links sent before, in the readable format, keep working for a
    # while after that (see `compose.links` and `legacy_links_until`).
    8: lambda db: (add_columns("deliveries", ("profile", "TEXT"))(db), _note_legacy_links(db)),
    # Version 9 keeps the stories a digest listed on the web past `max_items` (issue 21).
    9: add_columns("deliveries", ("more_ids", "TEXT")),
}
LATEST = max(MIGRATIONS)
OPAQUE_LINKS_SINCE = "opaque_links_since"  # meta key: when this state's links became opaque


def _note_legacy_links(db: sqlite3.Connection) -> None:
    """Note when this state began to send opaque links, if it had sent readable ones before
    (a digest, or a link from the web service)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    sent = any(
        db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
        for table in ("deliveries", "web_subscribers")
        if table in tables
    )
    if sent and "meta" in tables:
        db.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
            (OPAQUE_LINKS_SINCE, stamp(utcnow())),
        )
