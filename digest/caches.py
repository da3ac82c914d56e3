"""Every process-wide cache, registered by name so that it can be seen and emptied.

Speed work keeps a few things per process (a story's encoded section, a date's wording, the
taxonomy); `sizes()` shows what each holds and `clear()` empties them all (tests do, between
runs in one process). A cache is made with `memo` (a bounded `functools.lru_cache`) or, for a
mapping a module manages itself, registered with `register`.

    >>> @memo(maxsize=64)
    ... def double(x): return 2 * x
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sized
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_registry: dict[str, tuple[Callable[[], None], Callable[[], int]]] = {}


def register(name: str, clear: Callable[[], None], size: Callable[[], int]) -> None:
    _registry[name] = (clear, size)


def register_mapping(name: str, mapping: Sized) -> None:
    """A dict (or OrderedDict) a module keeps as a cache."""
    register(name, mapping.clear, mapping.__len__)  # type: ignore[attr-defined]


def memo(maxsize: int) -> Callable[[F], F]:
    """`functools.lru_cache(maxsize)`, registered under the function's qualified name."""

    def decorate(function: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(function)
        name = f"{function.__module__}.{function.__qualname__}"
        register(name, cached.cache_clear, lambda: cached.cache_info().currsize)
        return cached  # type: ignore[return-value]

    return decorate


def sizes() -> dict[str, int]:
    """How many entries each registered cache holds now."""
    return {name: size() for name, (_, size) in sorted(_registry.items())}


def clear() -> None:
    """Empty every registered cache."""
    for clear_one, _ in _registry.values():
        clear_one()
