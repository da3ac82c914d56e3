"""`digest serve`: one-click unsubscribe, the preference centre and confirmed sign-up."""

from .app import create_app, make_server, serve
from .sns import SnsTrust

__all__ = ["SnsTrust", "create_app", "make_server", "serve"]
