"""Who gets a digest: subscribers.yaml checked field by field, the web's changes laid over it,
and the send list a run reads.

- `fields`: one check per setting, for the file, the web's forms and the preview's query;
- `file`: reading and checking subscribers.yaml (every problem with its file and line);
- `merge`: the file with the web's changes laid over it (`effective_subscribers`);
- `send_list`: one run's checked subscribers, on disk, in send order;
- `export`: subscribers.yaml written back with the web's changes.
"""

from .fields import FieldError, valid_email
from .file import iter_subscribers, load_subscribers, not_listed, parse_subscribers
from .merge import (
    MergedSubscriber,
    effective_subscribers,
    load_effective_subscribers,
    merged_view,
    web_changes,
    with_web_changes,
)
from .send_list import SendList

__all__ = [
    "FieldError",
    "MergedSubscriber",
    "SendList",
    "effective_subscribers",
    "iter_subscribers",
    "load_effective_subscribers",
    "load_subscribers",
    "merged_view",
    "not_listed",
    "parse_subscribers",
    "valid_email",
    "web_changes",
    "with_web_changes",
]
