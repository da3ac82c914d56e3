"""`digest check`: every problem in settings, subscribers, templates and sources, at once."""

from __future__ import annotations

import os
from datetime import date

from .clock import utcnow
from .compose.render import Personal, Renderer
from .errors import DigestError, ProblemList
from .models import Item, Subscriber
from .selection import build_digest
from .settings import Settings
from .sources import read_sources
from .subscribers import load_subscribers
from .taxonomy import load_taxonomy, tag


def _collect(problems: list[DigestError], exc: DigestError) -> None:
    problems.extend(exc.problems if isinstance(exc, ProblemList) else [exc])


def run_checks(settings: Settings) -> tuple[list[DigestError], list[str], list[str]]:
    problems: list[DigestError] = []
    warnings: list[str] = []
    notes: list[str] = [f"settings {settings.path}"]
    try:
        taxonomy = load_taxonomy(settings.taxonomy)
        notes.append(f"taxonomy: {len(taxonomy.regions)} regions, {len(taxonomy.topics)} topics")
    except DigestError as exc:
        _collect(problems, exc)
        return problems, warnings, notes
    subscribers: list[Subscriber] = []
    try:
        subscribers = load_subscribers(settings.subscribers, taxonomy)
        notes.append(f"subscribers: {len(subscribers)} in {settings.subscribers}")
    except DigestError as exc:
        _collect(problems, exc)
    result = read_sources(settings.sources, {*taxonomy.regions, *taxonomy.topics})
    problems.extend(result.problems)
    notes.append(f"sources: {len(result.items)} item(s) in {result.files} file(s)/feed(s)")
    try:
        renderer = Renderer(settings.templates)
        renderer.check()
        sample = [tag(i, taxonomy) for i in result.items[:5]] or [
            tag(
                Item(
                    id="check",
                    title="Template check <b>&</b>",
                    date=date.today(),
                    summary="A sample summary.",
                ),
                taxonomy,
            )
        ]
        subscriber = subscribers[0] if subscribers else Subscriber(email="check@example.org")
        now = utcnow()
        digest = build_digest(
            subscriber,
            sample,
            set(),
            now,
            now.date(),
            taxonomy.regions,
            taxonomy.topics,
            only_ids=[t.id for t in sample],
        )
        assert digest is not None
        rendered = renderer.render(digest, Personal.of(subscriber, settings.unsubscribe_url))
        notes.append(
            f"templates in {settings.templates} render and compile "
            f"({len(rendered.html.encode()) / 1024:.1f} KB for a sample digest)"
        )
    except DigestError as exc:
        _collect(problems, exc)

    if not os.environ.get(settings.token_secret_env):
        warnings.append(
            f"${settings.token_secret_env} is not set: unsubscribe links are signed with a secret "
            f"generated once and kept in {settings.state}; set it to share links across machines"
        )
    smtp = settings.delivery.smtp
    if settings.delivery.method == "smtp" and smtp.username and smtp.password is None:
        warnings.append(
            f"delivery.smtp.username is set but ${smtp.password_env} is not: SMTP login will fail"
        )
    if (
        settings.delivery.method == "smtp"
        and smtp.security == "none"
        and smtp.host not in ("localhost", "127.0.0.1", "::1")
    ):
        warnings.append(
            f"delivery.smtp.security is none for {smtp.host}: mail crosses the "
            "network unencrypted; use starttls or ssl"
        )
    dkim = settings.dkim
    if dkim and dkim.private_key_env and not os.environ.get(dkim.private_key_env):
        warnings.append(
            f"dkim.private_key_env names ${dkim.private_key_env}, which is not set: "
            "messages would go out unsigned"
        )
    if "example.org" in settings.unsubscribe_url:
        warnings.append(f"unsubscribe_url is still {settings.unsubscribe_url}")
    notes.append(
        f"delivery: {settings.delivery.method}"
        + (
            f" to {settings.delivery.maildir}"
            if settings.delivery.method == "maildir"
            else f" via {smtp.host}:{smtp.port} ({smtp.security})"
        )
    )
    return problems, warnings, notes
