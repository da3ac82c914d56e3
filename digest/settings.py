"""load_settings(path) -> Settings: defaults, validation, paths resolved against the file's folder.

Every problem names the settings file, the line, the key and what was expected; all problems
in the file are reported together.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .crontab import crontab_trigger
from .durations import parse_duration
from .errors import ProblemList, SettingsError
from .yamlfile import LineDict, YamlSyntaxError, read_yaml, where

DEFAULT_PATH = Path("digest.yaml")
SECURITY_MODES = ("none", "starttls", "ssl")
METHODS = ("maildir", "smtp")
LIST_NAME = "Regional Migration Digest"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    security: str = "none"
    username: str | None = None
    password_env: str = "DIGEST_SMTP_PASSWORD"
    timeout: float = 30.0
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
    selector: str
    domain: str
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


@dataclass(frozen=True)
class Settings:
    path: Path
    sender: str
    subscribers: Path
    templates: Path
    state: Path
    sources: tuple[str, ...]
    delivery: DeliverySettings
    unsubscribe_url: str
    taxonomy: Path | None = None
    lookback: timedelta = timedelta(days=14)
    token_secret_env: str = "DIGEST_TOKEN_SECRET"
    list_id: str | None = None
    dkim: DkimSettings | None = None
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    poll_every: timedelta = timedelta(hours=1)
    catch_up: timedelta = timedelta(days=1)
    web: WebSettings = field(default_factory=WebSettings)

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


class _Reader:
    """Reads typed values out of one YAML mapping, collecting every problem."""

    def __init__(self, path: Path, data: LineDict, prefix: str, problems: list[SettingsError]):
        self.path, self.data, self.prefix, self.problems = path, data, prefix, problems

    def fail(self, key: str, expected: str, got: Any = None, line: int | None = None) -> None:
        shown = f", got {got!r}" if got is not None else ""
        line = line or (self.data.line_of(key) if isinstance(self.data, LineDict) else None)
        self.problems.append(
            SettingsError(
                f"{where(self.path, line)}: setting '{self.prefix}{key}': "
                f"expected {expected}{shown}",
                hint=f"fix '{self.prefix}{key}' in {self.path}",
            )
        )

    def unknown_keys(self, known: set[str]) -> None:
        for key in self.data:
            if key not in known:
                self.fail(str(key), f"one of {', '.join(sorted(known))} (unknown key)")

    def get(self, key: str, default: Any, check: Callable[[Any], Any], expected: str) -> Any:
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        try:
            return check(value)
        except (TypeError, ValueError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            self.fail(key, expected + detail, value)
            return default

    def mapping(self, key: str) -> _Reader:
        value = self.data.get(key)
        if value is None:
            value = LineDict()
            value.line, value.key_lines = self.data.line_of(key), {}
        elif not isinstance(value, dict):
            self.fail(key, "a mapping of settings", value)
            value = LineDict()
            value.line, value.key_lines = 0, {}
        return _Reader(self.path, value, f"{self.prefix}{key}.", self.problems)


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError
    if "\r" in value or "\n" in value:
        raise ValueError("line breaks are not allowed")
    return value.strip()


def _int(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise TypeError
        return value

    return check


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise TypeError
    return float(value)


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise TypeError
        return str(value)

    return check


def _sender(value: Any) -> str:
    text = _string(value)
    name, addr = parseaddr(text)
    user, at, domain = addr.partition("@")
    if not at or not user or "." not in domain:
        raise ValueError("an address with a domain, e.g. Digest <digest@example.org>")
    return text


def _url(value: Any) -> str:
    text = _string(value)
    if not text.startswith(("https://", "http://")):
        raise ValueError("an http(s) URL")
    return text


def _timezone(value: Any) -> str:
    text = _string(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown timezone {text!r}; use an IANA name like America/Guatemala"
        ) from exc
    return text


def _cron(value: Any) -> str:
    text = _string(value)
    crontab_trigger(text, "UTC")  # ValueError says which field is wrong
    return text


def _string_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TypeError
    return tuple(v.strip() for v in value)


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _read_smtp(reader: _Reader) -> SmtpSettings:
    reader.unknown_keys(set(SmtpSettings.__dataclass_fields__))
    d = SmtpSettings()
    return SmtpSettings(
        host=reader.get("host", d.host, _string, "a host name"),
        port=reader.get("port", d.port, _int(1, 65535), "a port number 1-65535"),
        security=reader.get(
            "security", d.security, _choice(SECURITY_MODES), "none, starttls or ssl"
        ),
        username=reader.get("username", d.username, _string, "a user name or null"),
        password_env=reader.get(
            "password_env", d.password_env, _string, "the name of an environment variable"
        ),
        timeout=reader.get("timeout", d.timeout, _positive_number, "seconds, a positive number"),
        retries=reader.get("retries", d.retries, _int(0, 100), "a whole number 0-100"),
        retry_backoff=reader.get(
            "retry_backoff", d.retry_backoff, _positive_number, "seconds, a positive number"
        ),
        max_per_second=reader.get(
            "max_per_second", None, _positive_number, "messages per second, a positive number"
        ),
        max_per_minute=reader.get(
            "max_per_minute", None, _positive_number, "messages per minute, a positive number"
        ),
        connections=reader.get("connections", d.connections, _int(1, 64), "a whole number 1-64"),
    )


def _read_dkim(reader: _Reader) -> DkimSettings | None:
    if not reader.data:
        return None
    reader.unknown_keys(set(DkimSettings.__dataclass_fields__))
    selector = reader.get("selector", None, _string, "the DKIM selector, e.g. digest2026")
    domain = reader.get("domain", None, _string, "the signing domain, e.g. example.org")
    key_path = reader.get("private_key_path", None, _string, "a path to a PEM private key")
    key_env = reader.get("private_key_env", None, _string, "an environment variable holding a key")
    if selector is None:
        reader.fail("selector", "the DKIM selector (required when dkim is set)")
    if domain is None:
        reader.fail("domain", "the signing domain (required when dkim is set)")
    if key_path is None and key_env is None:
        reader.fail("private_key_env", "private_key_env or private_key_path (one is required)")
    if selector is None or domain is None:
        return None
    return DkimSettings(
        selector=selector,
        domain=domain,
        private_key_path=Path(key_path) if key_path else None,
        private_key_env=key_env,
    )


def _ip_address(value: Any) -> str:
    import ipaddress

    return str(ipaddress.ip_address(_string(value)))


def _read_web(reader: _Reader) -> WebSettings:
    reader.unknown_keys(set(WebSettings.__dataclass_fields__))
    d = WebSettings()
    per = "a whole number 1-100000"
    return WebSettings(
        confirm_within=reader.get(
            "confirm_within", d.confirm_within, parse_duration, "a duration like 48h"
        ),
        trusted_proxy=reader.get(
            "trusted_proxy", d.trusted_proxy, _ip_address, "the proxy's IP address, e.g. 127.0.0.1"
        ),
        posts_per_minute=reader.get("posts_per_minute", d.posts_per_minute, _int(1, 100000), per),
        requests_per_minute=reader.get(
            "requests_per_minute", d.requests_per_minute, _int(1, 100000), per
        ),
        signups_per_hour=reader.get("signups_per_hour", d.signups_per_hour, _int(1, 100000), per),
        changes_per_hour=reader.get("changes_per_hour", d.changes_per_hour, _int(1, 100000), per),
    )


def load_settings(path: Path | str = DEFAULT_PATH) -> Settings:
    """Read and validate a settings file; SettingsError or ProblemList name every problem."""
    path = Path(path).absolute()
    if not path.is_file():
        raise SettingsError(
            f"{path}: settings file not found",
            hint="run digest from the folder holding digest.yaml, or pass --config PATH",
        )
    try:
        data = read_yaml(path)
    except YamlSyntaxError as exc:
        raise SettingsError(
            f"{where(path, exc.line)}: not valid YAML: {exc.problem}",
            hint="check indentation and quoting around that line",
        ) from exc
    if data is None:
        data = LineDict()
        data.line, data.key_lines = 1, {}
    if not isinstance(data, LineDict):
        raise SettingsError(f"{path}:1: expected a mapping of settings, got {type(data).__name__}")

    problems: list[SettingsError] = []
    top = _Reader(path, data, "", problems)
    top.unknown_keys(set(Settings.__dataclass_fields__) - {"path"})
    base = path.parent

    def resolve(value: str) -> Path:
        return (base / os.path.expanduser(value)).resolve()

    sender = top.get(
        "sender", "Regional Migration Digest <digest@example.org>", _sender, "a sender address"
    )
    subscribers = resolve(top.get("subscribers", "subscribers.yaml", _string, "a path"))
    templates = resolve(top.get("templates", "templates", _string, "a path to a folder"))
    state = resolve(top.get("state", ".digest/state.db", _string, "a path to a SQLite file"))
    sources = top.get("sources", ("items",), _string_list, "a list of files, folders or URLs")
    taxonomy_value = top.get("taxonomy", None, _string, "a path to a taxonomy YAML file")
    taxonomy = resolve(taxonomy_value) if taxonomy_value else None

    delivery_reader = top.mapping("delivery")
    delivery_reader.unknown_keys({"method", "maildir", "smtp"})
    delivery = DeliverySettings(
        method=delivery_reader.get("method", "maildir", _choice(METHODS), "maildir or smtp"),
        maildir=resolve(delivery_reader.get("maildir", "outbox", _string, "a path to a folder")),
        smtp=_read_smtp(delivery_reader.mapping("smtp")),
    )
    schedule_reader = top.mapping("schedule")
    schedule_reader.unknown_keys({"cron", "timezone"})
    defaults = ScheduleSettings()
    schedule = ScheduleSettings(
        cron=schedule_reader.get("cron", defaults.cron, _cron, "a crontab expression"),
        timezone=schedule_reader.get("timezone", defaults.timezone, _timezone, "an IANA timezone"),
    )

    settings = Settings(
        path=path,
        sender=sender,
        subscribers=subscribers,
        templates=templates,
        state=state,
        sources=tuple(s if _is_url(s) else str(resolve(s)) for s in sources),
        delivery=delivery,
        unsubscribe_url=top.get(
            "unsubscribe_url", "https://example.org/unsubscribe", _url, "an http(s) URL"
        ),
        taxonomy=taxonomy,
        lookback=top.get("lookback", timedelta(days=14), parse_duration, "a duration like 14d"),
        token_secret_env=top.get(
            "token_secret_env", "DIGEST_TOKEN_SECRET", _string, "an environment variable name"
        ),
        list_id=top.get("list_id", None, _string, "a List-Id such as digest.example.org"),
        dkim=_read_dkim(top.mapping("dkim")),
        schedule=schedule,
        poll_every=top.get("poll_every", timedelta(hours=1), parse_duration, "a duration like 1h"),
        catch_up=top.get("catch_up", timedelta(days=1), parse_duration, "a duration like 1d"),
        web=_read_web(top.mapping("web")),
    )
    if settings.dkim and settings.dkim.private_key_path:
        key_path = resolve(str(settings.dkim.private_key_path))
        settings = replace(settings, dkim=replace(settings.dkim, private_key_path=key_path))
    _check_paths(settings, top)
    if problems:
        raise problems[0] if len(problems) == 1 else ProblemList(list(problems))
    return settings


def _check_paths(settings: Settings, top: _Reader) -> None:
    """Files the settings point at must exist: name the key and what was expected there."""
    if not settings.subscribers.is_file():
        top.fail("subscribers", f"an existing file (not found: {settings.subscribers})")
    if not settings.templates.is_dir():
        top.fail("templates", f"an existing folder of templates (not found: {settings.templates})")
    if settings.taxonomy is not None and not settings.taxonomy.is_file():
        top.fail("taxonomy", f"an existing file (not found: {settings.taxonomy})")
    for source in settings.sources:
        if not _is_url(source) and not Path(source).exists():
            top.fail("sources", f"existing files, folders or URLs (not found: {source})")
    dkim = settings.dkim
    if dkim and dkim.private_key_path and not dkim.private_key_path.is_file():
        top.fail(
            "dkim", f"private_key_path to an existing file (not found: {dkim.private_key_path})"
        )
