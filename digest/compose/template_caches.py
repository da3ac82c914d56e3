"""Two caches that make a rendering cheaper without changing a byte of it.

- `remembered_gettext`: Jinja2's new-style gettext, each result remembered. A digest's
  templates call gettext a few dozen times, each call costing a catalog lookup, a Markup
  and a `%` besides two of Jinja2's context calls.
- `block_cache`: `{% call cached(sub) %}...{% endcall %}` in a template renders the block once
  per section (and per language: one cache per Jinja2 environment) and reuses its output.
  A story's group recurs in many digests, and most of a digest's markup is its stories.
- `SharedCode`: the templates compiled once for every language's environment.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jinja2
from markupsafe import Markup

WORDINGS_KEPT = 4096  # per language: translated strings with their values filled in


def _values_key(variables: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The values a translated string is filled with, as a key (their types too: a Markup
    value is not escaped where an equal str is); None when one cannot be a key."""
    try:
        key = tuple(sorted((k, type(v), v) for k, v in variables.items()))
        hash(key)
    except TypeError:
        return None
    return key


def remembered_gettext(strings: Any) -> dict[str, Any]:
    """Jinja2's new-style `gettext`, `_` and `ngettext` (jinja2.ext), each result remembered:
    a digest's few dozen strings cost a lookup each instead of a catalog lookup, a Markup
    and a `%` apiece. Same results: translated, made Markup where autoescaping, always
    `%`-formatted with the variables (`ngettext` adds `num`)."""
    remembered: dict[tuple[Any, ...], str] = {}

    def keep(key: tuple[Any, ...], value: str) -> str:
        if len(remembered) >= WORDINGS_KEPT:
            remembered.clear()
        remembered[key] = value
        return value

    @jinja2.pass_context
    def gettext(context: Any, string: str, **variables: Any) -> str:
        autoescape = context.eval_ctx.autoescape
        values = _values_key(variables)
        key = (autoescape, string, values)
        found = remembered.get(key) if values is not None else None
        if found is not None:
            return found
        translated = strings.gettext(string)
        value = (Markup(translated) if autoescape else translated) % variables
        return value if values is None else keep(key, value)

    @jinja2.pass_context
    def ngettext(context: Any, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        autoescape = context.eval_ctx.autoescape
        values = _values_key(variables)
        key = (autoescape, singular, plural, type(num), num, values)
        found = remembered.get(key) if values is not None else None
        if found is not None:
            return found
        translated = strings.ngettext(singular, plural, num)
        value = (Markup(translated) if autoescape else translated) % variables
        return value if values is None else keep(key, value)

    return {"gettext": gettext, "_": gettext, "ngettext": ngettext}


BLOCKS_KEPT = 4096  # per language: blocks rendered once and reused by every rendering


def block_cache() -> Any:
    """`{% call cached(sub) %}...{% endcall %}`: the block rendered once per template and
    section (in the environment's language), its output reused. The block must show
    nothing but the sections it is given (and the language's wording)."""
    blocks: OrderedDict[tuple[Any, ...], tuple[tuple[object, ...], str]] = OrderedDict()

    @jinja2.pass_context
    def cached(context: Any, *views: Any, caller: Any) -> str:
        if not all(hasattr(v, "block_key") for v in views):
            return caller()  # type: ignore[no-any-return]  # not a section: rendered in place
        key = (context.name, *(v.block_key for v in views))
        found = blocks.get(key)
        if found is not None:
            blocks.move_to_end(key)
            return found[1]
        output: str = caller()
        blocks[key] = (tuple(v.section for v in views), output)  # keeps the stories alive
        if len(blocks) > BLOCKS_KEPT:
            blocks.popitem(last=False)
        return output

    return cached


class SharedCode(jinja2.BytecodeCache):
    """Templates compiled once, for every language: each language has an environment of its
    own (its gettext, its dates) made with the same options, so a template's Python code is
    the same in all of them. Kept in memory for one Renderer; keyed by name and source."""

    def __init__(self) -> None:
        self.codes: dict[tuple[str, str], Any] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        bucket.code = self.codes.get((bucket.key, bucket.checksum))

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.codes[bucket.key, bucket.checksum] = bucket.code
