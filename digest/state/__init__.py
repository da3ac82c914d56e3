"""The state: items seen, deliveries, runs, secrets and the web's changes, in one SQLite file.

`State` is one open state; `reading(path)` opens it read-only for previews and checks;
`send_lock(path)` keeps two sends apart. The tables are in `schema.py`.
"""

from .bounce_records import BounceRecords
from .lock import send_lock
from .records import (
    BounceEventRecord,
    BounceSummary,
    Delivery,
    Finished,
    Run,
    StoredItem,
    Suppression,
    WebEvent,
    WebRecord,
)
from .sqlite import Planned, State, reading
from .web_changes import WebChanges

__all__ = [
    "BounceEventRecord",
    "BounceRecords",
    "BounceSummary",
    "Delivery",
    "Finished",
    "Planned",
    "Run",
    "State",
    "StoredItem",
    "Suppression",
    "WebChanges",
    "WebEvent",
    "WebRecord",
    "reading",
    "send_lock",
]
