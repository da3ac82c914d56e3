"""The sentences of a digest that are put together in code, in the reader's language: the
intro under the greeting, and the period of the "N more stories" line.

Their English is marked for the catalogs (`N_`, `N_plural`: `pybabel extract` finds them) and
translated where they are used, with the digest's `Localiser`.
"""

from __future__ import annotations

from .i18n import ENGLISH, N_, Localiser, N_plural

# The English of the singular "most recent" forms is the plural's ("the 1 most recent of 30
# stories"): only the languages that need it word the one-story case apart.
_INTRO_MORE = {
    "region": N_plural(
        "Here are the %(count)s most recent of %(total)s stories picked up for you since your "
        "last digest, grouped by region.",
        "Here are the %(count)s most recent of %(total)s stories picked up for you since your "
        "last digest, grouped by region.",
    ),
    "topic": N_plural(
        "Here are the %(count)s most recent of %(total)s stories picked up for you since your "
        "last digest, grouped by topic.",
        "Here are the %(count)s most recent of %(total)s stories picked up for you since your "
        "last digest, grouped by topic.",
    ),
}
_INTRO = {
    "region": N_plural(
        "Here is the story picked up for you since your last digest, grouped by region.",
        "Here are the %(count)s stories picked up for you since your last digest, grouped by "
        "region.",
    ),
    "topic": N_plural(
        "Here is the story picked up for you since your last digest, grouped by topic.",
        "Here are the %(count)s stories picked up for you since your last digest, grouped by "
        "topic.",
    ),
}
_PERIOD_WORDS = {"daily": N_("today"), "weekly": N_("this week"), "monthly": N_("this month")}
_SINCE_LAST_DIGEST = N_("since your last digest")


def intro(count: int, more: int, group_by: str, words: Localiser | None = None) -> str:
    """The sentence under the greeting, the same in the HTML and the text part."""
    words = words or ENGLISH
    forms = (_INTRO_MORE if more else _INTRO)["topic" if group_by == "topic" else "region"]
    text = words.ngettext(*forms, count)
    return text % {"count": words.number(count), "total": words.number(count + more)}


def more_period(frequency: str, words: Localiser | None = None) -> str:
    """'this week' (daily: 'today', monthly: 'this month'), after "N more stories"."""
    return (words or ENGLISH).gettext(_PERIOD_WORDS.get(frequency, _SINCE_LAST_DIGEST))
