"""What the settings are, and their defaults: each field's default here is the one default
(`load_settings` fills in from these; the README's settings reference lists them)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
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
class SourceSettings:
    """One entry of `sources:`: a file, folder or feed URL, and how to read and tag its items.

    Written as a plain string (just `path`) or as a mapping with the other keys."""

    path: str  # a file or folder (absolute once loaded), or an http(s) feed URL
    name: str | None = None  # how people call it; shown instead of the path
    language: str | None = None  # en, es or fr: every item's language, whatever the feed says
    regions: tuple[str, ...] = ()  # for items that name no place (and ambiguous places)
    require_topic: bool = False  # drop items that match no topic (for general-news feeds)
    line: int = field(default=0, compare=False)  # where digest.yaml writes it, for errors

    @property
    def label(self) -> str:
        return self.name or self.path

    @property
    def is_url(self) -> bool:
        return self.path.startswith(("http://", "https://"))

    @property
    def tagging_key(self) -> str:
        """What of these settings changes the items' tags: "" when nothing does, so items
        of a plain source keep the taxonomy's fingerprint alone."""
        if not self.regions and not self.require_topic:
            return ""
        text = "\0".join(sorted(self.regions)) + f"\0require_topic={self.require_topic}"
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def source_for(location: str, sources: Iterable[SourceSettings]) -> SourceSettings | None:
    """The settings that apply to a file or feed: the entry naming it, or the folder entry
    holding it most closely."""
    best: SourceSettings | None = None
    for source in sources:
        path = source.path.rstrip("/")
        inside = location == path or (not source.is_url and location.startswith(path + "/"))
        if inside and (best is None or len(path) > len(best.path.rstrip("/"))):
            best = source
    return best


@dataclass(frozen=True)
class BounceSettings:
    """`digest bounces` and the webhooks: where bounce mail arrives, VERP, the policy."""

    mailbox: str = "bounces"  # a Maildir folder (beside digest.yaml), or imaps://user@host/INBOX
    password_env: str = "DIGEST_BOUNCES_PASSWORD"  # the IMAP password's variable
    return_path: str | None = None  # envelope sender base, e.g. bounces@example.org: VERP on
    soft_limit: int = 3  # this many soft bounces (one per digest) within soft_window suppress
    soft_window: timedelta = timedelta(days=30)
    webhook_secret_env: str | None = None  # the signed JSON POST's HMAC secret; unset: off
    sns_topics: tuple[str, ...] = ()  # SNS topic ARNs whose SES notifications count; none: off

    @property
    def verp(self) -> bool:
        return self.return_path is not None

    @property
    def mailbox_is_imap(self) -> bool:
        return self.mailbox.startswith("imaps://")


@dataclass(frozen=True)
class PostgresState:
    """`state: postgresql://user@host:port/dbname`: the state in a PostgreSQL database that
    several hosts share. The URL never holds the password: it comes from the environment
    (`password_env`), or libpq's own PGPASSWORD and ~/.pgpass."""

    url: str  # postgresql://user@host:port/dbname[?sslmode=...], without a password
    password_env: str = "DIGEST_STATE_PASSWORD"
    lease: timedelta = timedelta(seconds=60)  # a dead host's claims are taken over after this
    # This host's own files beside a PostgreSQL state: `<local>.suppressions.txt` (its copy of
    # the suppression journal's lines it wrote).
    local: Path = Path(".digest/state")

    @property
    def host(self) -> str:
        """`host:port` as people name the server in messages."""
        parts = urlsplit(self.url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"

    @property
    def database(self) -> str:
        return urlsplit(self.url).path.lstrip("/")

    def __str__(self) -> str:
        return self.url


StateLocation = Path | PostgresState  # a SQLite file, or a PostgreSQL database


@dataclass(frozen=True)
class Settings:
    path: Path = DEFAULT_PATH
    sender: str = "Regional Migration Digest <digest@example.org>"
    subscribers: Path = Path("subscribers.yaml")
    templates: Path = Path("templates")
    state: StateLocation = Path(".digest/state.db")
    state_password_env: str = "DIGEST_STATE_PASSWORD"  # for a PostgreSQL state
    state_lease: timedelta = timedelta(seconds=60)  # how long a host's claim on a batch holds
    sources: tuple[SourceSettings, ...] = (SourceSettings("items"),)
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
    bounces: BounceSettings = field(default_factory=BounceSettings)
    excerpt_words: int = 60  # an item's excerpt is cut at a sentence near this many words
    max_items: int = 25  # stories in one digest; the rest are listed on the web (`digest serve`)
    # A subscriber's language when they set none, and an item's when it cannot be told.
    default_language: str = "en"

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
