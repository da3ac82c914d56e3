"""Every table of the state, the web's included, and the migrations of older state files.

`SCHEMA` is the current shape, created idempotently on every writable open; `MIGRATIONS[n]`
brings a file whose `user_version` is below n up to n (each step idempotent).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA = """
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
    first_seen TEXT NOT NULL
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
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    item_ids TEXT NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- A status change touches neither index: the pending one holds just the few pending rows.
CREATE INDEX IF NOT EXISTS deliveries_of_subscriber ON deliveries(subscriber);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(id) WHERE status = 'pending';
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


def _add_pending_nonce(db: sqlite3.Connection) -> None:
    """Version 3: each sign-up gets an id, so a confirmation link confirms only its own sign-up.
    A file made before the web has no table yet (SCHEMA makes it whole); one that has the
    column already (two processes upgrading at once) is left as it is."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(web_subscribers)")}
    if columns and "pending_nonce" not in columns:
        db.execute("ALTER TABLE web_subscribers ADD COLUMN pending_nonce TEXT")


# A step is SQL run as one script, or a function given the connection inside the step's
# transaction (for what SQL cannot make idempotent, such as adding a column).
Migration = str | Callable[[sqlite3.Connection], None]

# State files written before version 1 kept a row per item sent (`sent_items`), the same
# facts as the deliveries' item lists, and an index that every status change rewrote.
MIGRATIONS: dict[int, Migration] = {
    1: """
DROP TABLE IF EXISTS sent_items;
DROP INDEX IF EXISTS deliveries_by_subscriber;
""",
    3: _add_pending_nonce,
}
