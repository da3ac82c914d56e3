"""One run, from pickup to the last recorded delivery, and previews built the same way.

- `run.send`: the run (`digest send`, scheduled sends);
- `inputs`, `pickup`: the inputs checked, items picked up and tagged (`source_tagging`: with
  each source's settings);
- `composer`: each subscriber's digest and message;
- `journal`: pending before a message leaves, sent or failed after;
- `loop`: one process's share; `processes`: a large run over worker processes;
- `previews`: the same messages built without sending or recording;
- `report`: what a run reports.
"""

from .composer import ComposedMessage, Composer
from .inputs import Inputs, load_inputs
from .pickup import pick_up, tagged_items
from .previews import PreviewResult, Previews, compose_preview, open_previews, write_preview
from .replay import SentDigest, render_again, sent_digest
from .report import Outcome, PickupReport, SendReport
from .run import send
from .source_tagging import SourceTagging, checked_sources

__all__ = [
    "ComposedMessage",
    "Composer",
    "Inputs",
    "Outcome",
    "PickupReport",
    "PreviewResult",
    "Previews",
    "SendReport",
    "SourceTagging",
    "checked_sources",
    "compose_preview",
    "open_previews",
    "load_inputs",
    "pick_up",
    "send",
    "SentDigest",
    "render_again",
    "sent_digest",
    "tagged_items",
    "write_preview",
]
