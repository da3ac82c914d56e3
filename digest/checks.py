"""`digest check`: every problem in settings, subscribers, templates and sources, at once,
with warnings about what would work but should not stay as it is."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from .clock import utcnow
from .compose import aligned, missing_key
from .compose.i18n import missing_translations, project_strings, template_strings
from .compose.render import Personal, Renderer
from .errors import DeliveryConfigError, DigestError, ProblemList, StateError
from .languages import reader_languages
from .models import Item, Subscriber, TaggedItem
from .selection import build_digest
from .send import SourceTagging, checked_sources
from .settings import Settings
from .sources import label_of, read_sources, source_for
from .state import exists, reading
from .state.integrity import integrity_problems, restore_hint
from .subscribers import load_subscribers
from .taxonomy import Taxonomy, load_taxonomy, tag

_SAMPLE = Item(
    id="check", title="Template check <b>&</b>", date=date.today(), summary="A sample summary."
)


@dataclass
class CheckReport:
    problems: list[DigestError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def collect(self, exc: DigestError) -> None:
        self.problems.extend(exc.problems if isinstance(exc, ProblemList) else [exc])


def run_checks(settings: Settings) -> CheckReport:
    report = CheckReport(notes=[f"settings {settings.path}"])
    try:
        taxonomy = load_taxonomy(settings.taxonomy)
    except DigestError as exc:
        report.collect(exc)
        return report
    report.notes.append(f"taxonomy: {len(taxonomy.regions)} regions, {len(taxonomy.topics)} topics")
    subscribers = _check_subscribers(settings, taxonomy, report)
    sources, unusable = checked_sources(settings, taxonomy)
    report.problems.extend(unusable)
    result = read_sources(sources, {*taxonomy.regions, *taxonomy.topics})
    report.problems.extend(result.problems)
    report.warnings.extend(result.warnings)
    report.notes.append(f"sources: {len(result.items)} item(s) in {result.files} file(s)/feed(s)")
    tagging = SourceTagging(taxonomy, sources)
    sample = [t for t in map(tagging.tag, result.items[:5]) if t] or [tag(_SAMPLE, taxonomy)]
    _check_templates(settings, taxonomy, sample, subscribers, report)
    _check_translations(settings, taxonomy, report)
    _check_state(settings, report, set(result.failed))
    _check_secrets(settings, report)
    _check_delivery(settings, report)
    return report


def _check_state(settings: Settings, report: CheckReport, failing_now: set[str]) -> None:
    """The state a send would use: absent (a fresh install), or whole and undamaged; and the
    sources that failed when a pickup last read them (their earlier items are kept)."""
    path = settings.state
    try:
        if not exists(path):
            report.notes.append(f"state: none yet at {path} (the first send makes it)")
            return
        with reading(path) as state:
            assert state is not None
            counts = state.counts()
            records = state.sources()
    except DigestError as exc:
        report.collect(exc)
        return
    damage = integrity_problems(path) if isinstance(path, Path) else []
    if damage:
        report.problems.append(
            StateError(
                f"{path}: the state file is damaged: {'; '.join(damage[:3])}",
                hint=restore_hint(path),
            )
        )
        return
    shown = ", ".join(f"{n} {table}" for table, n in counts.items())
    checked = "integrity ok" if isinstance(path, Path) else "PostgreSQL keeps its own integrity"
    report.notes.append(f"state: {path} ({shown}), {checked}")
    for location, record in sorted(records.items()):
        if record.error and location not in failing_now:
            when = f"{record.checked_at:%Y-%m-%d %H:%M} UTC" if record.checked_at else "last time"
            report.warnings.append(
                f"source {label_of(location, source_for(location, settings.sources))} failed when "
                f"last picked up ({when}): "
                f"{record.error.removeprefix(location + ': ')}; its earlier items are kept"
            )


def _check_subscribers(
    settings: Settings, taxonomy: Taxonomy, report: CheckReport
) -> list[Subscriber]:
    try:
        subscribers = load_subscribers(settings.subscribers, taxonomy)
    except DigestError as exc:
        report.collect(exc)
        return []
    report.notes.append(f"subscribers: {len(subscribers)} in {settings.subscribers}")
    return subscribers


def _check_templates(
    settings: Settings,
    taxonomy: Taxonomy,
    sample: list[TaggedItem],
    subscribers: list[Subscriber],
    report: CheckReport,
) -> None:
    """The templates render and compile for a sample digest of real items."""
    try:
        renderer = Renderer(
            settings.templates,
            list_name=settings.list_name,
            excerpt_words=settings.excerpt_words,
            web_pages=settings.serves_web,
            names=taxonomy.names,
            default_language=settings.default_language,
        )
        renderer.check()
        first = subscribers[0] if subscribers else Subscriber(email="check@example.org")
        now = utcnow()
        sizes = []
        for language in renderer.localisers:  # every language's wording renders
            subscriber = replace(first, language=language)
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
            words = renderer.localiser(language)
            rendered = renderer.render(
                digest, Personal.of(subscriber, settings.unsubscribe_url, words)
            )
            sizes.append(f"{language} {len(rendered.html.encode()) / 1024:.1f} KB")
    except DigestError as exc:
        report.collect(exc)
        return
    report.notes.append(
        f"templates in {settings.templates} render and compile (a sample digest: "
        f"{', '.join(sizes)})"
    )


SHOWN_MISSING = 5  # untranslated strings named in one warning


def _check_translations(settings: Settings, taxonomy: Taxonomy, report: CheckReport) -> None:
    """Strings and names each language shows in English, for want of a translation."""
    try:
        in_templates = template_strings(settings.templates)
        for language in reader_languages()[1:]:
            strings = [*in_templates, *project_strings(language)]
            missing = missing_translations(language, strings, settings.templates)
            if missing:
                shown = ", ".join(f"{m!r} ({where})" for m, where in missing[:SHOWN_MISSING])
                more = len(missing) - SHOWN_MISSING
                report.warnings.append(
                    f"{language}: {len(missing)} string(s) have no translation and show in "
                    f"English: {shown}" + (f" and {more} more" if more > 0 else "")
                )
            names = taxonomy.names.get(language, {})
            unnamed = [n for n in (*taxonomy.regions, *taxonomy.topics) if n not in names]
            if unnamed:
                report.warnings.append(
                    f"{language}: the taxonomy gives no name in this language for "
                    f"{', '.join(map(repr, unnamed))}: shown in English (add `names: "
                    f"{{{language}: ...}}` under each in {taxonomy.source})"
                )
    except DigestError as exc:  # a broken catalog: already reported by the templates' check
        if not any(str(exc) == str(p) for p in report.problems):
            report.collect(exc)


def _check_secrets(settings: Settings, report: CheckReport) -> None:
    if not os.environ.get(settings.token_secret_env):
        report.warnings.append(
            f"${settings.token_secret_env} is not set: unsubscribe links are signed with a secret "
            f"generated once and kept in {settings.state}; set it to share links across machines"
        )
    _check_dkim(settings, report)
    _check_bounce_secrets(settings, report)
    if not settings.serves_web:
        report.warnings.append(
            f"unsubscribe_url is still {settings.unsubscribe_url}: `digest serve` is taken "
            'to be not set up, so digests have no "view in your browser" link, and past '
            f"max_items ({settings.max_items}) the other stories wait for the next digest "
            "instead of being listed on the web"
        )
    else:
        report.notes.append(
            f"web pages: digests link to {settings.page_url('view')}; past max_items "
            f"({settings.max_items}) the other stories are listed at {settings.page_url('more')}"
        )


def _check_bounce_secrets(settings: Settings, report: CheckReport) -> None:
    bounces = settings.bounces
    if bounces.mailbox_is_imap and not os.environ.get(bounces.password_env):
        report.warnings.append(
            f"bounces.mailbox is {bounces.mailbox} but ${bounces.password_env} is not set: "
            "the bounce mailbox cannot be read"
        )
    if bounces.webhook_secret_env and not os.environ.get(bounces.webhook_secret_env):
        report.warnings.append(
            f"bounces.webhook_secret_env names ${bounces.webhook_secret_env}, which is not "
            "set: the generic bounce webhook is off"
        )


def _check_dkim(settings: Settings, report: CheckReport) -> None:
    """A configured DKIM must be able to sign (over SMTP an error, exit 2), and its domain
    must align with the From domain, or DMARC fails."""
    dkim = settings.dkim
    if dkim is None:
        return
    problem = missing_key(dkim)
    if problem is not None and settings.delivery.method == "smtp":
        report.problems.append(
            DeliveryConfigError(
                f"{settings.path}: {problem}: over SMTP, digest send refuses to send unsigned",
                hint=f"set ${dkim.private_key_env} (or dkim.private_key_path) to the PEM "
                "private key, or remove the dkim section",
            )
        )
    elif problem is not None:
        report.warnings.append(f"{problem}: messages would go out unsigned")
    sender_domain = settings.sender_domain
    if not aligned(dkim.domain, sender_domain):
        report.warnings.append(
            f"dkim.domain {dkim.domain} does not align with the From domain {sender_domain}: "
            f"receivers' DMARC checks fail unless both belong to one organisational domain; "
            f"sign with {sender_domain} (or a domain it is part of)"
        )


def _check_delivery(settings: Settings, report: CheckReport) -> None:
    delivery, smtp = settings.delivery, settings.delivery.smtp
    if delivery.method == "maildir":
        report.notes.append(f"delivery: maildir to {delivery.maildir}")
        return
    if smtp.username and smtp.password is None:
        report.warnings.append(
            f"delivery.smtp.username is set but ${smtp.password_env} is not: SMTP login will fail"
        )
    if smtp.security == "none" and smtp.host not in ("localhost", "127.0.0.1", "::1"):
        report.warnings.append(
            f"delivery.smtp.security is none for {smtp.host}: mail crosses the "
            "network unencrypted; use starttls or ssl"
        )
    report.notes.append(f"delivery: smtp via {smtp.host}:{smtp.port} ({smtp.security})")
