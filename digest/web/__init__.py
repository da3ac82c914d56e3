"""`digest serve`: one-click unsubscribe, the preference centre and confirmed sign-up."""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
