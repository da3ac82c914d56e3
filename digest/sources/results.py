"""What reading gives: one source's items and warnings (`Read`), and every source's together
(`SourceResult`), with what to remember of each source."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SourceError
from ..models import Item, SourceRecord


@dataclass
class Read:
    """One source's items, and what is wrong with it that did not stop it being read."""

    items: list[Item] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class SourceResult:
    items: list[Item] = field(default_factory=list)
    problems: list[SourceError] = field(default_factory=list)  # sources that could not be read
    warnings: list[str] = field(default_factory=list)  # read, but something was wrong
    files: int = 0  # files and feeds looked at
    unchanged: int = 0  # not read again: the same as when last read (a file, or a feed's 304)
    records: list[SourceRecord] = field(default_factory=list)  # what to remember of each
    failed: list[str] = field(default_factory=list)  # locations that could not be read
