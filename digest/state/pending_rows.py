"""New pending rows, the one write a send makes before each batch of messages leaves: their
ids are the deliveries' keys, so the write waits for its answer.

SQLite takes them as a multi-row INSERT. PostgreSQL takes them as one INSERT over `unnest` of
one array per column: eight parameters whatever the batch's size, so the statement is the
same every time (psycopg prepares it once, and parses it once instead of hundreds of
placeholders per batch), and it commits on its own when nothing else is written with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_COLUMNS = "run_id, subscriber, message_id, item_ids, created_at, updated_at, profile, more_ids"
_TYPES = ("bigint", "text", "text", "text", "text", "text", "text", "text")  # in that order

_UNNEST = (
    "INSERT INTO deliveries(run_id, subscriber, message_id, status, item_ids, created_at, "
    "updated_at, profile, more_ids) SELECT r, s, m, 'pending', i, c, u, p, o FROM unnest("
    + ", ".join(f"?::{t}[]" for t in _TYPES)
    + ") AS t(r, s, m, i, c, u, p, o) RETURNING id, subscriber"
)


def insert_pending(db: Any, rows: Sequence[tuple[Any, ...]], postgresql: bool) -> list[int]:
    """Insert rows of (`_COLUMNS`); their ids in the order given."""
    if not rows:
        return []
    by_subscriber: dict[str, int] = {}
    if postgresql:
        returned = db.execute(_UNNEST, [list(column) for column in zip(*rows, strict=True)])
        by_subscriber.update({subscriber: int(key) for key, subscriber in returned})
        return [by_subscriber[row[1]] for row in rows]
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        values = ", ".join(["(?, ?, ?, 'pending', ?, ?, ?, ?, ?)"] * len(chunk))
        returned = db.execute(
            "INSERT INTO deliveries(run_id, subscriber, message_id, status, item_ids, "
            f"created_at, updated_at, profile, more_ids) VALUES {values} "
            "RETURNING id, subscriber",
            [value for row in chunk for value in row],
        ).fetchall()
        by_subscriber.update({subscriber: int(key) for key, subscriber in returned})
    return [by_subscriber[row[1]] for row in rows]
