"""What the settings are, and their defaults: each field's default here is the one default
(`load_settings` fills in from these; the README's settings reference lists them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PATH = Path("digest.yaml")
SECURITY_MODES = ("none", "starttls", "ssl")
METHODS = ("maildir", "smtp")
LIST_NAME = "Regional Migration Digest"
_EXAMPLE_HOSTS = {"example.org", "www.example.org", "example.com", "example.net"}


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    security: str = "none"
    username: str | None = None
    password_env: str = "DIGEST_SMTP_PASSWORD"
    timeout: float = 30.0
    data_timeout: float = 600.0  # RFC 5321 4.5.3.2.6: the reply to the message's end
    retries: int = 5
    retry_backoff: float = 2.0
    max_per_second: float | None = None
    max_per_minute: float | None = None
    connections: int = 1

    @property
    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


@dataclass(frozen=True)
class DeliverySettings:
    method: str = "maildir"
    maildir: Path = Path("outbox")
    smtp: SmtpSettings = field(default_factory=SmtpSettings)


@dataclass(frozen=True)
class DkimSettings:
    selector: str = ""
    domain: str = ""
    private_key_path: Path | None = None
    private_key_env: str | None = None


@dataclass(frozen=True)
class ScheduleSettings:
    cron: str = "0 8 * * mon"
    timezone: str = "America/Guatemala"


@dataclass(frozen=True)
class WebSettings:
    """`digest serve`: how long a sign-up link lives, the proxy to trust, and rate limits."""

    confirm_within: timedelta = timedelta(hours=48)
    trusted_proxy: str | None = None  # the HTTPS proxy's address; its X-Forwarded-* are believed
    posts_per_minute: int = 10  # per client
    requests_per_minute: int = 60  # per client
    signups_per_hour: int = 3  # confirmation emails per address
    changes_per_hour: int = 30  # preference changes per address
    confirmations_per_hour: int = 100  # confirmation emails in all, whoever asks


@dataclass(frozen=True)
class Settings:
    path: Path = DEFAULT_PATH
    sender: str = "Regional Migration Digest <digest@example.org>"
    subscribers: Path = Path("subscribers.yaml")
    templates: Path = Path("templates")
    state: Path = Path(".digest/state.db")
    sources: tuple[str, ...] = ("items",)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    unsubscribe_url: str = "https://example.org/unsubscribe"
    taxonomy: Path | None = None
    lookback: timedelta = timedelta(days=14)
    token_secret_env: str = "DIGEST_TOKEN_SECRET"
    list_id: str | None = None
    dkim: DkimSettings | None = None
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    poll_every: timedelta = timedelta(hours=1)
    catch_up: timedelta = timedelta(days=1)
    web: WebSettings = field(default_factory=WebSettings)
    excerpt_words: int = 60  # an item's excerpt is cut at a sentence near this many words
    max_items: int = 25  # stories in one digest; the rest are listed on the web (`digest serve`)

    @property
    def base(self) -> Path:
        return self.path.parent

    @property
    def sender_address(self) -> Address:
        name, addr = parseaddr(self.sender)
        user, _, domain = addr.partition("@")
        return Address(display_name=name, username=user, domain=domain)

    @property
    def sender_domain(self) -> str:
        return self.sender_address.domain

    @property
    def list_name(self) -> str:
        """The list's name, shown in every digest and page: the sender's display name."""
        return self.sender_address.display_name or LIST_NAME

    @property
    def list_id_value(self) -> str:
        return self.list_id or f"digest.{self.sender_domain}"

    def page_url(self, name: str) -> str:
        """A page of `digest serve`, beside the unsubscribe page: .../preferences."""
        parts = urlsplit(self.unsubscribe_url)
        folder = (parts.path or "/").rsplit("/", 1)[0]
        return f"{parts.scheme}://{parts.netloc}{folder}/{name}"

    @property
    def serves_web(self) -> bool:
        """Whether `digest serve` answers at `unsubscribe_url`'s host: not while that is
        still the example.org default. Without it, a digest's links to its web pages (view
        in the browser, the stories past `max_items`) are left out."""
        return urlsplit(self.unsubscribe_url).hostname not in _EXAMPLE_HOSTS
