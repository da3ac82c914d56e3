"""What the preview app keeps across requests: the watcher of the inputs, the test-send form's
CSRF token and the Host names the pages may be loaded through."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from flask import Flask, current_app

from .watch import Watcher

EXTENSION = "digest.preview"


@dataclass
class PreviewSite:
    watcher: Watcher
    # Only pages this server rendered hold it: a web page elsewhere cannot post a test send.
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # Filled in when the server binds its port; a page loaded through any other name (DNS
    # rebinding) is refused, so no name is allowed before then.
    allowed_hosts: set[str] = field(default_factory=set)


def site_of(app: Flask) -> PreviewSite:
    site: PreviewSite = app.extensions[EXTENSION]
    return site


def current_site() -> PreviewSite:
    return site_of(current_app)
