"""What every request of `digest serve` shares: the settings, the secret, the paths, the limits,
and `Problem`, a request that cannot be served."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from flask import current_app

from ..compose import DkimSigner, make_token
from ..compose.i18n import Localiser
from ..compose.render import Renderer
from ..errors import DigestError
from ..models import Subscriber, address_key
from ..settings import Settings
from ..state import State
from ..subscribers import load_subscribers
from ..taxonomy import Taxonomy

if TYPE_CHECKING:
    from .ratelimit import SlidingWindow

log = logging.getLogger("digest.web")

PREFERENCES_LIFETIME = timedelta(days=7)  # preference links are minted by this service
# Links in the readable format keep working this long after the state's first opaque one: a
# digest's `lookback`, and at least the 30 days an unsubscribe link must work (CAN-SPAM).
LEGACY_LINKS_AT_LEAST = timedelta(days=30)
CSRF_LIFETIME = timedelta(hours=12)
CSRF_COOKIE = "digest_csrf"
MAX_BODY = 64 * 1024
# Opaque tokens, or (links sent before them) base64 JSON "." signature.
TOKEN_SHAPE = re.compile(r"^(?:[A-Za-z0-9_-]{2,1000}\.[A-Za-z0-9_-]{2,100}|[A-Za-z0-9_-]{2,1400})$")
COOKIE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
SIGN_UP_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # a sign-up's id in its confirmation link
RETRY_LATER = 120  # seconds, in Retry-After when the state or the mail server is unavailable
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Problem(Exception):
    """A request that cannot be served: shown as a small page with this status."""

    def __init__(
        self, status: int, title: str, text: str, retry_after: int | None = None, **links: str
    ) -> None:
        super().__init__(title)
        self.status, self.title, self.text, self.retry_after = status, title, text, retry_after
        self.links = links


@dataclass
class Site:
    """What every request needs: settings, secret, taxonomy, paths and the rate limits."""

    settings: Settings
    secret: bytes
    taxonomy: Taxonomy
    list_name: str
    unsubscribe_path: str
    prefix: str
    public_origin: str
    limits: dict[str, SlidingWindow]
    signer: DkimSigner | None = None
    localisers: dict[str, Localiser] = field(default_factory=dict)  # the pages' languages
    # Links in the readable format (sent before tokens were opaque) work until then, if ever.
    legacy_until: float | None = None
    _file: tuple[tuple[int, int], list[Subscriber]] | None = None
    _file_lock: threading.Lock = field(default_factory=threading.Lock)
    _renderer: Renderer | None = None
    render_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def renderer(self) -> Renderer:
        """The digests' templates, loaded on the first "view in browser" (use `render_lock`:
        a Renderer serves one thread at a time)."""
        if self._renderer is None:
            settings = self.settings
            self._renderer = Renderer(
                settings.templates,
                list_name=self.list_name,
                excerpt_words=settings.excerpt_words,
                web_pages=True,
                names=self.taxonomy.names,
                default_language=settings.default_language,
            )
        return self._renderer

    def path(self, name: str, **query: str) -> str:
        path = self.unsubscribe_path if name == "unsubscribe" else f"{self.prefix}/{name}"
        return path + (f"?{urlencode(query)}" if query else "")

    def file_subscribers(self) -> list[Subscriber]:
        """subscribers.yaml, read again whenever the staff change it."""
        path = self.settings.subscribers
        try:
            info = path.stat()
            key = (info.st_mtime_ns, info.st_size)
            with self._file_lock:
                if self._file is None or self._file[0] != key:
                    self._file = (key, load_subscribers(path, self.taxonomy))
                return self._file[1]
        except (OSError, DigestError) as exc:
            log.error("cannot read %s: %s", path, exc)
            raise Problem(
                503,
                "Please try again a little later",
                "The subscriber list is being updated right now. Nothing was changed.",
                retry_after=30,
            ) from exc

    def file_subscriber(self, email: str) -> Subscriber | None:
        key = address_key(email)
        return next((s for s in self.file_subscribers() if address_key(s.email) == key), None)

    def preferences_token(self, email: str) -> str:
        expires = time.time() + PREFERENCES_LIFETIME.total_seconds()
        return make_token(self.secret, "preferences", email, expires)


def current_site() -> Site:
    return current_app.extensions["digest"]  # type: ignore[no-any-return]


def open_state() -> State:
    return State(current_site().settings.state)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
