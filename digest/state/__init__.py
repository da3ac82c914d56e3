"""The state: items seen, deliveries, runs, secrets and the web's changes, in one SQLite file
or a PostgreSQL database that several hosts share (`SharedRuns`: one run over many hosts).

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
from .shared_runs import SharedRuns, holder_id
from .sqlite import Planned, State, exists, reading
from .web_changes import WebChanges

__all__ = [
    "BounceEventRecord",
    "BounceRecords",
    "BounceSummary",
    "Delivery",
    "Finished",
    "Planned",
    "Run",
    "AcceptanceWriter",
    "SharedRuns",
    "State",
    "StoredItem",
    "Suppression",
    "WebChanges",
    "WebEvent",
    "WebRecord",
    "exists",
    "holder_id",
    "reading",
    "send_lock",
]


def __getattr__(name: str) -> object:
    """`AcceptanceWriter` is imported when first asked for: it needs psycopg (20 MB), which a
    send on SQLite never loads."""
    if name == "AcceptanceWriter":
        from .acceptances import AcceptanceWriter

        return AcceptanceWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
