"""Everything a person wrote, loaded and checked once per run: taxonomy, subscribers, templates."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..compose.render import Renderer
from ..errors import ProblemList
from ..models import Subscriber
from ..settings import Settings
from ..subscribers import load_effective_subscribers, not_listed
from ..taxonomy import Taxonomy, load_taxonomy
from ..taxonomy.lexicon import Lexicon
from .source_tagging import checked_sources


@dataclass
class Inputs:
    settings: Settings
    taxonomy: Taxonomy
    subscribers: list[Subscriber]
    renderer: Renderer


def load_inputs(
    settings: Settings,
    keep_sources: bool = True,
    with_subscribers: bool = True,
    taxonomy: Taxonomy | None = None,
) -> Inputs:
    """Taxonomy, effective subscribers, templates and the sources' regions, checked.
    `keep_sources=False` (sending) keeps only the encoded parts of each rendering, not its
    MJML, HTML and text. A send reads its subscribers into a `SendList` instead
    (`with_subscribers=False`). A worker process is given the run's `taxonomy` without its
    lexicon (`light`) rather than load it."""
    taxonomy = taxonomy or load_taxonomy(settings.taxonomy)
    _, problems = checked_sources(settings, taxonomy)
    if problems:
        raise problems[0] if len(problems) == 1 else ProblemList(list(problems))
    subscribers = load_effective_subscribers(settings, taxonomy) if with_subscribers else []
    renderer = load_renderer(settings, taxonomy.names, keep_sources)
    return Inputs(settings, taxonomy, subscribers, renderer)


def load_renderer(
    settings: Settings,
    names: Mapping[str, Mapping[str, str]] | None = None,
    keep_sources: bool = False,
) -> Renderer:
    """The templates and catalogs, checked; `names` are the taxonomy's region and topic
    names per language (see `load_inputs` for `keep_sources`)."""
    renderer = Renderer(
        settings.templates,
        list_name=settings.list_name,
        keep_sources=keep_sources,
        excerpt_words=settings.excerpt_words,
        web_pages=settings.serves_web,
        names=names,
        default_language=settings.default_language,
    )
    renderer.check()
    return renderer


def light(taxonomy: Taxonomy) -> Taxonomy:
    """The taxonomy's regions, topics and fingerprint without its lexicon of place names
    (tens of MB): what composing needs once every item is tagged."""
    return dataclasses.replace(taxonomy, lexicon=Lexicon(), region_terms={}, topic_terms={})


def select_subscribers(subscribers: list[Subscriber], only: Iterable[str]) -> list[Subscriber]:
    """`--only`: just these addresses, each of which must be on the list."""
    wanted = {o.casefold() for o in only}
    if not wanted:
        return subscribers
    chosen = [s for s in subscribers if s.email.casefold() in wanted]
    missing = wanted - {s.email.casefold() for s in chosen}
    if missing:
        raise not_listed(missing)
    return chosen
