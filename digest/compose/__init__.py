"""From a digest to message bytes: Jinja2 + MJML rendering, the MIME bytes, DKIM, signed links.

- `render`: `Renderer` renders a digest once per shape (`SharedRendering`), the personal fields
  left as placeholders. It loads Jinja2 and MJML, so it is imported by name
  (`from digest.compose.render import Renderer`), not here: the web service and the delivery
  need only the light parts below.
- `mime`: `build_message`, the one place message bytes are written by hand;
- `dkim`: `load_signer` signs messages with dkimpy;
- `links`: signed tokens in unsubscribe, preference and confirmation links.
"""

from .dkim import DkimSigner, aligned, load_signer, missing_key
from .links import BadToken, TokenData, link_with_token, make_token, read_link, read_token
from .mime import NoDotLines, build_message, stable_message_id

__all__ = [
    "BadToken",
    "DkimSigner",
    "TokenData",
    "aligned",
    "NoDotLines",
    "build_message",
    "link_with_token",
    "load_signer",
    "make_token",
    "missing_key",
    "read_link",
    "read_token",
    "stable_message_id",
]
