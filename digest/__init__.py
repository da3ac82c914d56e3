"""digest: weekly regional migration-news digests, one per subscriber, delivered exactly once.

The public API, loaded on first use so that `import digest.web` does not load the renderer:

    settings = digest.load_settings("digest.yaml")
    report = digest.send(settings, dry_run=True)
    digest.write_preview(settings, Path("preview"))

Errors are `digest.DigestError` and its subclasses (see `digest.errors`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "load_settings": "settings",
    "Settings": "settings",
    "send": "send",
    "SendReport": "send",
    "open_previews": "send",
    "write_preview": "send",
    "DigestError": "errors",
    "InputError": "errors",
    "SettingsError": "errors",
    "SubscribersError": "errors",
    "TemplateError": "errors",
    "SourceError": "errors",
    "DeliveryError": "errors",
    "LockedError": "errors",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'digest' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
