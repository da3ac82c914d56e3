"""load_settings(path) -> Settings: the file's values checked, the defaults (`model`) filled in,
paths resolved against the file's folder.

Every problem names the settings file, the line, the key and what was expected; all problems
in the file are reported together.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ProblemList, SettingsError
from ..languages import reader_languages
from ..yamlfile import LineDict, YamlSyntaxError, read_yaml, where
from . import values as v
from .model import (
    DEFAULT_PATH,
    METHODS,
    SECURITY_MODES,
    BounceSettings,
    DeliverySettings,
    DkimSettings,
    PostgresState,
    ScheduleSettings,
    Settings,
    SmtpSettings,
    SourceSettings,
    StateLocation,
    WebSettings,
)
from .sources import read_source_entries

Keys = dict[str, tuple[v.Check, str]]  # key -> (check, what was expected)

PER = "a whole number 1-100000"
SMTP: Keys = {
    "host": (v.string, "a host name"),
    "port": (v.whole_number(1, 65535), "a port number 1-65535"),
    "security": (v.choice(SECURITY_MODES), "none, starttls or ssl"),
    "username": (v.string, "a user name or null"),
    "password_env": (v.string, "the name of an environment variable"),
    "timeout": (v.positive_number, "seconds, a positive number"),
    "data_timeout": (v.positive_number, "seconds, a positive number"),
    "retries": (v.whole_number(0, 100), "a whole number 0-100"),
    "retry_backoff": (v.positive_number, "seconds, a positive number"),
    "max_per_second": (v.positive_number, "messages per second, a positive number"),
    "max_per_minute": (v.positive_number, "messages per minute, a positive number"),
    "connections": (v.whole_number(1, 64), "a whole number 1-64"),
}
DELIVERY: Keys = {
    "method": (v.choice(METHODS), "maildir or smtp"),
    "maildir": (v.string, "a path to a folder"),
}
DKIM: Keys = {
    "selector": (v.string, "the DKIM selector, e.g. digest2026"),
    "domain": (v.string, "the signing domain, e.g. example.org"),
    "private_key_path": (v.string, "a path to a PEM private key"),
    "private_key_env": (v.string, "an environment variable holding a key"),
}
SCHEDULE: Keys = {
    "cron": (v.cron, "a crontab expression"),
    "timezone": (v.timezone, "an IANA timezone"),
}
WEB: Keys = {
    "confirm_within": (v.duration, "a duration like 48h"),
    "trusted_proxy": (v.ip_address, "the proxy's IP address, e.g. 127.0.0.1"),
    "posts_per_minute": (v.whole_number(1, 100000), PER),
    "requests_per_minute": (v.whole_number(1, 100000), PER),
    "signups_per_hour": (v.whole_number(1, 100000), PER),
    "changes_per_hour": (v.whole_number(1, 100000), PER),
    "confirmations_per_hour": (v.whole_number(1, 100000), PER),
}
BOUNCES: Keys = {
    "mailbox": (v.mailbox, "a Maildir folder or imaps://user@host/FOLDER"),
    "password_env": (v.string, "the name of an environment variable"),
    "return_path": (v.return_path, "the envelope sender base, e.g. bounces@example.org"),
    "soft_limit": (v.whole_number(1, 1000), "a whole number 1-1000"),
    "soft_window": (v.duration, "a duration like 30d"),
    "webhook_secret_env": (v.string, "the name of an environment variable"),
    "sns_topics": (v.string_list, "a list of SNS topic ARNs"),
}
TOP: Keys = {
    "sender": (v.sender, "a sender address"),
    "subscribers": (v.string, "a path"),
    "templates": (v.string, "a path to a folder"),
    "state": (v.state, "a path to a SQLite file, or postgresql://user@host:port/dbname"),
    "state_password_env": (v.string, "the name of an environment variable"),
    "state_lease": (v.duration, "a duration like 60s"),
    "taxonomy": (v.string, "a path to a taxonomy YAML file"),
    "lookback": (v.duration, "a duration like 14d"),
    "unsubscribe_url": (v.url, "an http(s) URL"),
    "token_secret_env": (v.string, "an environment variable name"),
    "list_id": (v.string, "a List-Id such as digest.example.org"),
    "poll_every": (v.duration, "a duration like 1h"),
    "catch_up": (v.duration, "a duration like 1d"),
    "excerpt_words": (v.whole_number(10, 1000), "a whole number of words 10-1000"),
    "max_items": (v.whole_number(1, 1000), "a whole number of stories 1-1000"),
    "default_language": (v.language, f"one of {', '.join(reader_languages())}"),
}
SECTIONS = ("delivery", "dkim", "schedule", "web", "bounces")
READ_ELSEWHERE = (*SECTIONS, "sources")


class _Reader:
    """Reads checked values out of one YAML mapping, collecting every problem."""

    def __init__(self, path: Path, data: LineDict, prefix: str, problems: list[SettingsError]):
        self.path, self.data, self.prefix, self.problems = path, data, prefix, problems

    def fail(self, key: str, expected: str, got: Any = None) -> None:
        shown = f", got {got!r}" if got is not None else ""
        line = self.data.line_of(key) if isinstance(self.data, LineDict) else None
        self.problems.append(
            SettingsError(
                f"{where(self.path, line)}: setting '{self.prefix}{key}': "
                f"expected {expected}{shown}",
                hint=f"fix '{self.prefix}{key}' in {self.path}",
            )
        )

    def read(self, keys: Keys, defaults: Any, others: tuple[str, ...] = ()) -> dict[str, Any]:
        """The keys' values, each checked, or `defaults`' where unset or wrong; unknown keys
        are problems (`others` are read elsewhere)."""
        known = {*keys, *others}
        for key in self.data:
            if key not in known:
                self.fail(str(key), f"one of {', '.join(sorted(known))} (unknown key)")
        result = {}
        for key, (check, expected) in keys.items():
            result[key] = getattr(defaults, key)
            value = self.data.get(key)
            if value is None:
                continue
            try:
                result[key] = check(value)
            except (TypeError, ValueError) as exc:
                detail = f" ({exc})" if str(exc) else ""
                shown = None if isinstance(exc, v.SecretValueError) else value
                self.fail(key, expected + detail, shown)
        return result

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


def _read_file(path: Path) -> LineDict:
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
    return data


def _read_dkim(reader: _Reader) -> DkimSettings | None:
    if not reader.data:
        return None
    found = reader.read(DKIM, DkimSettings())
    if not found["selector"]:
        reader.fail("selector", "the DKIM selector (required when dkim is set)")
    if not found["domain"]:
        reader.fail("domain", "the signing domain (required when dkim is set)")
    if found["private_key_path"] is None and found["private_key_env"] is None:
        reader.fail("private_key_env", "private_key_env or private_key_path (one is required)")
    if not found["selector"] or not found["domain"]:
        return None
    key_path = found["private_key_path"]
    return DkimSettings(**found | {"private_key_path": Path(key_path) if key_path else None})


def _read_bounces(reader: _Reader, resolve: Any) -> BounceSettings:
    found = reader.read(BOUNCES, BounceSettings())
    if not found["mailbox"].startswith("imaps://"):
        found["mailbox"] = str(resolve(found["mailbox"]))
    return BounceSettings(**found)


def load_settings(path: Path | str = DEFAULT_PATH) -> Settings:
    """Read and check a settings file; SettingsError or ProblemList name every problem."""
    path = Path(path).absolute()
    problems: list[SettingsError] = []
    top = _Reader(path, _read_file(path), "", problems)
    found = top.read(TOP, Settings(), others=READ_ELSEWHERE)
    delivery_reader = top.mapping("delivery")
    delivery = delivery_reader.read(DELIVERY, DeliverySettings(), others=("smtp",))
    smtp = SmtpSettings(**delivery_reader.mapping("smtp").read(SMTP, SmtpSettings()))

    def resolve(value: str | Path) -> Path:
        return (path.parent / os.path.expanduser(str(value))).resolve()

    dkim = _read_dkim(top.mapping("dkim"))
    if dkim is not None and dkim.private_key_path is not None:
        dkim = replace(dkim, private_key_path=resolve(dkim.private_key_path))
    settings = Settings(
        **found
        | {
            "path": path,
            "subscribers": resolve(found["subscribers"]),
            "templates": resolve(found["templates"]),
            "state": _state_location(found, resolve),
            "sources": _read_sources(top, resolve),
            "taxonomy": resolve(found["taxonomy"]) if found["taxonomy"] else None,
            "delivery": DeliverySettings(
                method=delivery["method"], maildir=resolve(delivery["maildir"]), smtp=smtp
            ),
            "dkim": dkim,
            "schedule": ScheduleSettings(
                **top.mapping("schedule").read(SCHEDULE, ScheduleSettings())
            ),
            "web": WebSettings(**top.mapping("web").read(WEB, WebSettings())),
            "bounces": _read_bounces(top.mapping("bounces"), resolve),
        }
    )
    _check_paths(settings, top)
    if problems:
        raise problems[0] if len(problems) == 1 else ProblemList(list(problems))
    return settings


def _state_location(found: dict[str, Any], resolve: Callable[[str], Path]) -> StateLocation:
    """A SQLite file resolved against the settings' folder, or a PostgreSQL database (with
    where this host keeps its own files: beside the default SQLite file's place)."""
    value = str(found["state"])
    if not value.lower().startswith(v.POSTGRES_SCHEMES):
        return resolve(value)
    return PostgresState(
        url=value,
        password_env=found["state_password_env"],
        lease=found["state_lease"],
        local=resolve(Settings().state).with_suffix(""),  # type: ignore[arg-type]
    )


def _read_sources(top: _Reader, resolve: Callable[[str], Path]) -> tuple[SourceSettings, ...]:
    """`sources:`, each entry's file or folder resolved against the settings file's folder."""
    if top.data.get("sources") is None:
        return tuple(replace(s, path=str(resolve(s.path))) for s in Settings().sources)

    def fail(line: int | None, problem: str) -> None:
        top.problems.append(
            SettingsError(
                f"{where(top.path, line)}: setting 'sources', {problem}",
                hint=f"fix 'sources' in {top.path}; see the README's settings reference",
            )
        )

    def locate(path: str) -> str:
        return str(resolve(path))

    return read_source_entries(top.data["sources"], top.data.line_of("sources"), fail, locate)


def _check_paths(settings: Settings, top: _Reader) -> None:
    """Files the settings point at must exist: name the key and what was expected there."""
    if not settings.subscribers.is_file():
        top.fail("subscribers", f"an existing file (not found: {settings.subscribers})")
    if not settings.templates.is_dir():
        top.fail("templates", f"an existing folder of templates (not found: {settings.templates})")
    if settings.taxonomy is not None and not settings.taxonomy.is_file():
        top.fail("taxonomy", f"an existing file (not found: {settings.taxonomy})")
    for source in settings.sources:
        if not source.is_url and not Path(source.path).exists():
            top.problems.append(
                SettingsError(
                    f"{where(top.path, source.line or top.data.line_of('sources'))}: setting "
                    f"'sources': expected existing files, folders or URLs (not found: "
                    f"{source.path})",
                    hint=f"fix 'sources' in {top.path}",
                )
            )
    dkim = settings.dkim
    if dkim and dkim.private_key_path and not dkim.private_key_path.is_file():
        top.fail(
            "dkim", f"private_key_path to an existing file (not found: {dkim.private_key_path})"
        )
