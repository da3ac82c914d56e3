"""`digest serve`: one-click unsubscribe, the preference centre and confirmed sign-up."""

from .app import create_app, make_server, serve

__all__ = ["create_app", "make_server", "serve"]
