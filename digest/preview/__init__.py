"""`digest preview --serve`: every subscriber's digest in the browser before it goes out."""

from .app import serve

__all__ = ["serve"]
