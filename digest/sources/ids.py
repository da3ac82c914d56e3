"""Stable item ids: the feed's guid or the link; otherwise derived from date and title."""

from __future__ import annotations

import hashlib
from datetime import date


def item_id(guid: str | None, link: str | None, when: date, title: str) -> str:
    if guid:
        return guid.strip()
    if link:
        return link.strip()
    normal = " ".join(title.casefold().split())
    digest = hashlib.sha256(f"{when.isoformat()}|{normal}".encode()).hexdigest()[:16]
    return f"{when.isoformat()}-{digest}"
