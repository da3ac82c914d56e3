"""Items and sources in the state: what was picked up, when first, as tagged; and what each
source was when last read. An unchanged item is not written again, an unchanged source not
read again, and tags are kept until the taxonomy (or the tagging code) changes."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ..clock import parse_stamp, stamp
from ..models import Item, SourceRecord
from .records import StoredItem


def content_hash(item: Item) -> str:
    """What the source said of an item, hashed: the same story read again hashes the same."""
    fields = (
        item.title, item.date.isoformat(), item.summary, item.link, item.source,
        list(item.regions), list(item.topics), list(item.categories), item.language,
    )  # fmt: skip
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()[:32]


class ItemsMixin:
    """The items and sources part of `State` (it has `db` and `transaction`)."""

    db: Any  # sqlite3 or PostgreSQL (`postgres.PgConnection`)

    if TYPE_CHECKING:

        def transaction(self) -> contextlib.AbstractContextManager[Any]: ...

        def has_table(self, name: str) -> bool: ...

    def add_items(self, items: Iterable[Item], now: datetime) -> int:
        """Store items; new ones get `now` as first seen, changed ones are rewritten (their tags
        dropped), unchanged ones are left alone. Returns how many were new."""
        seen = stamp(now)
        new = 0
        with self.transaction():
            for item in items:
                cursor = self.db.execute(
                    "INSERT INTO items(id, title, date, summary, link, source, regions, topics, "
                    "categories, first_seen, language, content_hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET title = excluded.title, date = excluded.date, "
                    "summary = excluded.summary, link = excluded.link, source = excluded.source, "
                    "regions = excluded.regions, topics = excluded.topics, "
                    "categories = excluded.categories, language = excluded.language, "
                    "content_hash = excluded.content_hash, tags = NULL, tagged_with = NULL "
                    "WHERE items.content_hash IS DISTINCT FROM excluded.content_hash "
                    "RETURNING first_seen",
                    (
                        item.id,
                        item.title,
                        item.date.isoformat(),
                        item.summary,
                        item.link,
                        item.source,
                        json.dumps(item.regions),
                        json.dumps(item.topics),
                        json.dumps(item.categories),
                        seen,
                        item.language,
                        content_hash(item),
                    ),
                )
                row = cursor.fetchone()
                if row is not None and row["first_seen"] == seen:
                    new += 1
        return new

    def items(
        self,
        since: datetime | None = None,
        tagged_with_other_than: str | Collection[str] | None = None,
    ) -> list[StoredItem]:
        """Items newest first; those first seen `since`, or not tagged with this fingerprint
        (or with none of these)."""
        query, args = "SELECT * FROM items WHERE 1 = 1", []
        if since is not None:
            query += " AND first_seen >= ?"
            args.append(stamp(since))
        if isinstance(tagged_with_other_than, str):
            tagged_with_other_than = [tagged_with_other_than]
        if tagged_with_other_than is not None:
            marks = ", ".join("?" * len(tagged_with_other_than))
            query += f" AND (tagged_with IS NULL OR tagged_with NOT IN ({marks}))"
            args += list(tagged_with_other_than)
        rows = self.db.execute(query + " ORDER BY date DESC, first_seen DESC, id", args)
        return [_stored_item(row) for row in rows]

    def items_by_id(self, ids: Iterable[str]) -> list[StoredItem]:
        """The stored items of these ids (those still kept), in no particular order."""
        wanted = list(dict.fromkeys(ids))
        found: list[StoredItem] = []
        for start in range(0, len(wanted), 500):  # SQLite's limit on parameters
            chunk = wanted[start : start + 500]
            rows = self.db.execute(
                f"SELECT * FROM items WHERE id IN ({','.join('?' * len(chunk))})", chunk
            )
            found.extend(_stored_item(row) for row in rows)
        return found

    def save_tags(self, tags: Sequence[tuple[str, dict[str, Any]]], fingerprint: str) -> None:
        """Keep items' tags (id, tags), made with the taxonomy of this fingerprint."""
        with self.transaction():
            self.db.executemany(
                "UPDATE items SET tags = ?, tagged_with = ? WHERE id = ?",
                [(json.dumps(t, ensure_ascii=False), fingerprint, i) for i, t in tags],
            )

    # -- sources ----------------------------------------------------------------------------
    def sources(self) -> dict[str, SourceRecord]:
        if not self.has_table("sources"):
            return {}
        rows = self.db.execute("SELECT * FROM sources")
        return {
            row["location"]: SourceRecord(
                location=row["location"],
                fingerprint=row["fingerprint"],
                etag=row["etag"],
                last_modified=row["last_modified"],
                checked_at=parse_stamp(row["checked_at"]),
                error=row["error"],
            )
            for row in rows
        }

    def remember_sources(self, records: Iterable[SourceRecord]) -> None:
        with self.transaction():
            self.db.executemany(
                "INSERT INTO sources(location, fingerprint, etag, last_modified, checked_at, "
                "error) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(location) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, etag = excluded.etag, "
                "last_modified = excluded.last_modified, checked_at = excluded.checked_at, "
                "error = excluded.error",
                [
                    (r.location, r.fingerprint, r.etag, r.last_modified, stamp(r.checked_at),
                     r.error)
                    for r in records
                ],
            )  # fmt: skip


def _stored_item(row: Any) -> StoredItem:
    keys = row.keys()
    return StoredItem(
        item=Item(
            id=row["id"],
            title=row["title"],
            date=date.fromisoformat(row["date"]),
            summary=row["summary"],
            link=row["link"],
            source=row["source"],
            regions=tuple(json.loads(row["regions"])),
            topics=tuple(json.loads(row["topics"])),
            categories=tuple(json.loads(row["categories"])),
            language=row["language"] if "language" in keys else None,
        ),
        first_seen=parse_stamp(row["first_seen"]),
        tags=json.loads(row["tags"]) if "tags" in keys and row["tags"] else None,
        tagged_with=row["tagged_with"] if "tagged_with" in keys else None,
    )
