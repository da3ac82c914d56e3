"""`digest preview`: every digest rendered to files, or served in the browser."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..send import write_preview
from ..settings import Settings
from .main import config_option
from .output import out


@click.command()
@config_option
@click.option("--only", "only", multiple=True, metavar="EMAIL", help="Only these subscribers.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("preview"),
    show_default=True,
    help="Folder for the files.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the previews in the browser on 127.0.0.1 instead of writing files; pages "
    "reload when a template, the settings, the subscribers or an item file changes.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8025,
    show_default=True,
    help="Port for --serve (0: any free port).",
)
@click.option("--open", "open_browser", is_flag=True, help="With --serve: open the browser.")
def preview(
    settings: Settings,
    only: tuple[str, ...],
    out_dir: Path,
    serve: bool,
    port: int,
    open_browser: bool,
) -> None:
    """Render every digest to files without sending or recording anything.

    Writes <address>.mjml (after Jinja2, before compiling), .html, .txt and .eml per
    subscriber into --out. With --serve, shows them in the browser instead: every
    subscriber, each email at desktop and phone width, its headers, text part and size,
    and a button that sends a test copy.

    \b
    Examples:
      digest preview
      digest preview --only ana@example.org --out /tmp/preview
      digest preview --serve --open
    """
    ctx = click.get_current_context()
    given = {
        name
        for name in ("only", "out_dir", "port", "open_browser")
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    if serve:
        if given & {"only", "out_dir"}:
            raise click.UsageError("--only and --out write files; they do not go with --serve")
        from ..preview import serve as serve_preview

        serve_preview(settings, port=port, open_browser=open_browser)
        return
    if given & {"port", "open_browser"}:
        raise click.UsageError("--port and --open need --serve")
    results = write_preview(settings, out_dir, only)
    table = Table(title=f"Preview in {out_dir}", title_justify="left")
    for column in ("subscriber", "items", "html", "subject"):
        table.add_column(column)
    for r in results:
        if r.message is None:
            table.add_row(r.subscriber.email, "0", "", "[dim]nothing new: no email[/]")
        else:
            rendered = r.message.rendered
            table.add_row(
                r.subscriber.email,
                str(rendered.shown),
                f"{len(rendered.html.encode()) / 1024:.1f} KB",
                escape(rendered.subject),
            )
    out.print(table)
