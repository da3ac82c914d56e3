"""`digest serve`, and `subscribers` / `subscribers export`, which show and write the
subscribers a send uses."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..clock import utcnow
from ..settings import Settings, load_settings
from ..state import reading
from ..subscribers import load_subscribers, merged_view
from ..subscribers.export import subscribers_yaml, written_settings
from ..taxonomy import load_taxonomy
from .main import config_option, config_path_option
from .output import err, iso, out, print_json


@click.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port."
)
@click.option(
    "--threads", type=click.IntRange(1, 64), default=8, show_default=True, help="Worker threads."
)
def serve(settings: Settings, host: str, port: int, threads: int) -> None:
    """Serve one-click unsubscribe, the preference centre and sign-up.

    Meant to sit behind the office's HTTPS proxy at `unsubscribe_url`'s host; the other pages
    live beside the unsubscribe path (/preferences, /subscribe, /confirm). Set
    `web.trusted_proxy` to the proxy's address so rate limits see the real clients.

    \b
    Example:
      digest serve --port 8080
    """
    import logging

    from ..web import serve as run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    err.print(
        f"Serving {settings.unsubscribe_url} (and its preference and sign-up pages) "
        f"on http://{host}:{port}; stop with Ctrl+C."
    )
    run(settings, host, port, threads=threads)


def _shown(value: list[str] | str | None, source: str, empty: str) -> str:
    text = (", ".join(value) if isinstance(value, list) else value) or empty
    marks = {"web": " [bold cyan](web)[/]", "default": " [dim](default)[/]"}
    return escape(text) + marks.get(source, "")


def _language_shown(s: Any, sources: dict[str, str], default: str) -> str:
    """'es', or 'es, news: es, en' when they read news in more than their language."""
    news = s.news_languages(default)  # (their language,) unless they chose others
    text = _shown(s.reads(default), sources["language"], "")
    return text if news == (s.reads(default),) else f"{text}, news: {escape(', '.join(news))}"


def _entries(settings: Settings, include_all: bool) -> list[Any]:
    taxonomy = load_taxonomy(settings.taxonomy)
    file_subscribers = load_subscribers(settings.subscribers, taxonomy)
    with reading(settings.state) as state:
        entries = merged_view(
            file_subscribers, state, taxonomy, written=written_settings(settings.subscribers)
        )
    return entries if include_all else [e for e in entries if e.active]


def _as_json(entry: Any, default_language: str) -> dict[str, Any]:
    s, record = entry.subscriber, entry.record
    return {
        "email": s.email,
        "status": entry.status,
        "origin": entry.origin,
        "name": s.name,
        "regions": list(s.regions),
        "topics": list(s.topics),
        "group_by": s.group_by,
        "order": s.order,
        "frequency": s.frequency,
        "timezone": s.timezone,
        "language": s.reads(default_language),
        "item_languages": list(s.news_languages(default_language)),
        "sources": entry.sources,
        "confirmed_at": iso(record.confirmed_at) if record else None,
        "unsubscribed_at": iso(record.unsubscribed_at) if record else None,
        "unsubscribed_via": record.unsubscribed_via if record else None,
        "pending_since": iso(record.pending_at) if record else None,
        "why": entry.why,
        "suppressed_at": iso(entry.suppression.at) if entry.suppression else None,
        "suppressed_because": entry.suppression.reason if entry.suppression else None,
    }


@click.group(invoke_without_command=True)
@config_path_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.option(
    "--all",
    "include_all",
    is_flag=True,
    help="Also list unsubscribed and suppressed addresses (with why), sign-ups not confirmed "
    "yet, and addresses that left the file after changing a setting on the web.",
)
@click.pass_context
def subscribers(ctx: click.Context, config_path: Path, as_json: bool, include_all: bool) -> None:
    """The subscribers the next send delivers to, and where each setting came from.

    subscribers.yaml is the staff's file; changes subscribers make on the web (preferences,
    unsubscribes, confirmed sign-ups) are kept in the state and win over it. Each setting is
    marked (web) when changed on the web and (default) when nobody set it; "from" says
    whether the address is in the file or signed up on the web.

    \b
    Examples:
      digest subscribers
      digest subscribers --all --json
      digest subscribers export
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings(config_path)
    entries = _entries(settings, include_all)
    default = settings.default_language
    if as_json:
        print_json([_as_json(e, default) for e in entries])
        return
    table = Table(title=f"{len(entries)} subscriber(s)", title_justify="left", show_lines=True)
    table.add_column("email", no_wrap=True)  # whole, however narrow the terminal
    columns = ("from", "status", "name", "regions", "topics", "grouping", "order")
    for column in (*columns, "frequency"):
        table.add_column(column)
    table.add_column("timezone")
    # The language column only where languages vary (a one-language office's table stays).
    languages = any(e.subscriber.news_languages(default) != ("en",) for e in entries)
    if languages:
        table.add_column("language")  # with the news languages when they are not just it
    for e in entries:
        s, src = e.subscriber, e.sources
        language = [_language_shown(s, src, default)] if languages else []
        table.add_row(
            s.email,
            e.origin,
            escape(e.why) if not e.active else e.status,
            _shown(s.name, src["name"], "-"),
            _shown(list(s.regions), src["regions"], "all"),
            _shown(list(s.topics), src["topics"], "all"),
            _shown(s.group_by, src["group_by"], ""),
            _shown(s.order, src["order"], ""),
            _shown(s.frequency, src["frequency"], ""),
            _shown(s.timezone, src["timezone"], "office's"),
            *language,
        )
    out.print(table)


@subscribers.command("export")
@config_option
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Where to write; default: the subscribers file in the settings (kept as .bak). "
    "'-' prints it.",
)
def export(settings: Settings, out_path: Path | None) -> None:
    """Write an up-to-date subscribers.yaml: the file with every web change applied.

    Unsubscribed addresses are left out and confirmed web sign-ups added. The state keeps
    its records, so an unsubscribe still wins if the address is written back by hand.
    Suppressed addresses (their mail bounced) stay in the file: the state and the
    suppression journal keep them out until the suppression is lifted.

    \b
    Examples:
      digest subscribers export
      digest subscribers export --out new-subscribers.yaml
    """
    active = [
        e.subscriber
        for e in _entries(settings, include_all=True)
        if e.active or e.status == "suppressed"
    ]
    note = (
        f"Exported by `digest subscribers export` on {utcnow():%Y-%m-%d %H:%M} UTC:\n"
        "the staff's file with the changes subscribers made on the web."
    )
    text = subscribers_yaml(active, note)
    if out_path is not None and str(out_path) == "-":
        sys.stdout.write(text)
        return
    target = (out_path or settings.subscribers).absolute()
    backup = None
    if target.exists():
        backup = target.with_name(target.name + ".bak")
        backup.write_bytes(target.read_bytes())
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written whole, then renamed over the old file: a send never reads half a file.
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, target.stat().st_mode & 0o777 if target.exists() else 0o644)
    os.replace(temporary, target)
    out.print(
        f"Wrote {len(active)} subscriber(s) to {target}"
        + (f" (the previous file is in {backup})." if backup else ".")
    )
