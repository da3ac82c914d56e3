"""A quick reader for subscribers.yaml written the usual way, for lists of a million.

Reading YAML through libyaml's events costs about 20 µs an entry in Python objects alone
(most of a minute for a million). Nearly every real list is written in one plain form:

    subscribers:
      - email: ana@example.org
        name: "Ana Pérez"
        regions: [Central America, Caribbean]
        group_by: topic

This reads that form line by line with string operations, checks each entry with the same
`fields` checks, and gives the same subscribers as the exact reader (`file.iter_subscribers`).
It is deliberately narrow: at the first thing it is not sure of (another layout, an anchor,
a tag, a block list, a multi-line or escaped string, a value YAML would read as a number or a
date, an unusual character) or at the first problem of any kind (an invalid entry, a
duplicate address), it raises `NotPlain`, and the caller drops what it was given and reads the
file the exact way, which reports every problem with its line as before. So this never decides
what a file means nor what its errors say; it only finds valid plain files quickly.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..models import Subscriber
from ..taxonomy import Taxonomy
from ..yamlfile import plain_scalar_tag
from . import fields

CHUNK = 1 << 20  # characters read at a time
KEYS = frozenset(fields.KEYS)
LIST_KEY = "subscribers"
_STR, _NULL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null"
# What YAML reads as a line break or refuses in a file, and tabs (allowed in some places
# only): any of these sends the file to the exact reader. Allowed: LF, printable ASCII and
# the printable Unicode ranges of YAML 1.1 (no C1 controls, surrogates or BOM inside).
_UNUSUAL = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
# Characters that start something other than a plain scalar (YAML 1.1 indicators), or that a
# plain value here must not hold (a comment, a mapping value, flow punctuation).
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_NOT_IN_PLAIN = re.compile(r"[:#]")
_NOT_IN_FLOW_ITEMS = re.compile(r"[\[\]{}#:\"']")
# An address `fields.valid_email` accepts that YAML reads as a plain string (no indicator
# first, no ":" or "#"): the usual ones. Others are read line by line and checked there.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_EMAIL = rf"[A-Za-z0-9][A-Za-z0-9._+-]*@{_LABEL}(?:\.{_LABEL})+"


class NotPlain(Exception):
    """Not in the plain form, or not valid: read the file the exact way."""


# The fields of a `Subscriber` in its order: what `plain_subscribers` gives for each entry.
FIELDS = (
    "email",
    "name",
    "regions",
    "topics",
    "group_by",
    "frequency",
    "order",
    "timezone",
    "language",
    "item_languages",
    "line",
)
assert tuple(f.name for f in dataclasses.fields(Subscriber)) == FIELDS
_AFTER_NAME = fields.SETTINGS[1:]  # as written in a file, and as the whole-entry pattern reads
Fields = tuple[
    str, str, tuple[str, ...], tuple[str, ...], str, str, str, str | None, str | None,
    tuple[str, ...], int,
]  # fmt: skip


def plain_subscribers(path: Path, taxonomy: Taxonomy) -> Iterator[Fields]:
    """Each subscriber's fields (`Subscriber(*fields)` is the one `iter_subscribers` gives),
    when the file is in the plain form and every entry is valid; raises NotPlain otherwise,
    possibly after giving some, which the caller must then drop. Duplicate addresses are
    the caller's to find (they need the whole list)."""
    reader = _Reader(taxonomy)
    for block in _blocks(path, reader):
        yield from reader.block(block)
    if reader.entry:
        yield reader.values.fields(reader.entry, reader.entry_line)
    elif not reader.width:
        raise NotPlain  # no entries: small, or not the plain form; the exact reader decides


def _blocks(path: Path, reader: _Reader) -> Iterator[str]:
    """The file's text a block of whole entries at a time (LF line ends), once each block is
    known to hold only characters YAML reads the way this reader does."""
    carried = ""
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            while chunk := stream.read(CHUNK):
                text = carried + chunk
                if "\r" in text:
                    cut_cr = text.endswith("\r")  # a CRLF cut in two
                    text = text.replace("\r\n", "\n")
                    if cut_cr:
                        text = text[:-1]
                    if "\r" in text:
                        raise NotPlain  # a line break YAML reads and this does not
                    if cut_cr:
                        text += "\r"
                cut = text.rfind("\n" + reader.dash) if reader.dash else text.rfind("\n")
                block, carried = text[: cut + 1], text[cut + 1 :]
                if _UNUSUAL.search(block):
                    raise NotPlain
                yield block
    except (UnicodeDecodeError, OSError) as exc:
        raise NotPlain from exc
    if "\r" in carried or _UNUSUAL.search(carried):
        raise NotPlain
    if carried:
        yield carried if carried.endswith("\n") else carried + "\n"


class _Reader:
    """Where the reading is: the list's layout (set by its first entry), the entry being
    read, the line number. Entries written in the usual order (email, then the settings in
    the order of `fields.KEYS`) are read whole by one regular expression; any other line by
    `line`."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.values = _Values(taxonomy)
        self.head = True
        self.dash = self.indent = ""  # "  - " and "    "
        self.width = 0
        self.entry: dict[str, str] = {}
        self.entry_line = self.number = 0
        self.whole: re.Pattern[str] | None = None

    def block(self, text: str) -> Iterator[Fields]:
        """The entries a block ends (its last may go on in the next block until the layout
        is known: the first block is read line by line)."""
        position, end, number = 0, len(text), self.number
        whole, fields_of = self.whole, self.values.whole_entry
        while position < end:
            found = whole.match(text, position) if whole is not None else None
            if found is not None:
                if self.entry:
                    yield self.values.fields(self.entry, self.entry_line)
                    self.entry = {}
                yield fields_of(found.groups(), number + 1)
                number += text.count("\n", position, found.end())
                position = found.end()
                continue
            stop = text.index("\n", position)
            number += 1
            self.number = number
            finished = self.line(text[position:stop], number)
            if finished is not None:
                yield finished
            position = stop + 1
        self.number = number

    def line(self, line: str, number: int) -> Fields | None:
        """One line; returns the entry it ends, if it starts the next."""
        width = self.width
        start = line[:width]
        if width and start in (self.indent, self.dash):
            key, colon, raw = line[width:].partition(":")
            if key in KEYS and colon and (not raw or raw[0] == " "):
                if start == self.dash:
                    finished = self.values.fields(self.entry, self.entry_line)
                    self.entry, self.entry_line = {key: raw.strip(" ")}, number
                    return finished
                if key in self.entry:
                    raise NotPlain  # YAML refuses it; the exact reader says where
                self.entry[key] = raw.strip(" ")
                return None
        stripped = line.lstrip(" ")
        if not stripped or stripped[0] == "#":
            return None  # blank, or a comment
        if self.head:
            _check_head(line)
            self.head = False
        elif not width and stripped.startswith("- "):  # the first entry: the layout
            self._lay_out(len(line) - len(stripped))
            key, colon, raw = line[self.width :].partition(":")
            if key not in KEYS or not colon or (raw and raw[0] != " "):
                raise NotPlain
            self.entry, self.entry_line = {key: raw.strip(" ")}, number
        else:
            raise NotPlain  # another indentation: a block list, a continued value, a top key
        return None

    def _lay_out(self, depth: int) -> None:
        self.width = depth + 2
        self.dash, self.indent = " " * depth + "- ", " " * self.width
        lines = [f"{self.dash}email: (?P<email>{_EMAIL}) *\n"] + [
            f"(?:{self.indent}{key}: (?P<{key}>[^\n]*)\n)?" for key in fields.SETTINGS
        ]
        # blank and comment lines after it, then the next entry or the end of the block
        lines.append(f"(?:[ ]*(?:#[^\n]*)?\n)*(?={re.escape(self.dash)}|\\Z)")
        self.whole = re.compile("".join(lines))


def _check_head(line: str) -> None:
    key, colon, rest = line.partition(":")
    rest = rest.strip(" ")
    if key != LIST_KEY or not colon or (rest and rest[0] != "#"):
        raise NotPlain
    if rest and not line[len(key) + 1 :].startswith(" "):
        raise NotPlain  # "subscribers:#..." is not a comment


class _Values:
    """Checks each entry's settings, remembering the checked value of each by how it is
    written (a list holds few distinct choices)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self.checked: dict[str, dict[str | None, Any]] = {key: {} for key in fields.SETTINGS}

    def fields(self, entry: dict[str, str], line: int) -> Fields:
        """The entry's fields, each checked as `file._subscriber` checks it."""
        get = entry.get
        raw_email = get("email")
        if raw_email is None:
            raise NotPlain
        try:
            email = fields.check_email(_scalar(raw_email))
            name = fields.check_name(_scalar(entry["name"])) if "name" in entry else ""
        except fields.FieldError as exc:
            raise NotPlain from exc
        return (email, name, *self.settings([get(key) for key in _AFTER_NAME]), line)

    def whole_entry(self, found: tuple[str | None, ...], line: int) -> Fields:
        """An entry read whole (see `_Reader._lay_out`): its address is known to be valid
        but for its length; the other values are as written after "key: "."""
        email, name = found[:2]
        assert email is not None
        if len(email) > 254:
            raise NotPlain
        if name is None:
            name = ""
        elif (name := name.strip(" "))[:1] == '"' and name[-1:] == '"' and len(name) > 1:
            inner = name[1:-1]  # no control characters can be here (see _UNUSUAL)
            if '"' in inner or "\\" in inner:
                raise NotPlain
            name = inner.strip()
        else:
            name = self.name(name)
        return (email, name, *self.settings(found[2:]), line)

    def settings(self, written: Sequence[str | None]) -> tuple[Any, ...]:
        """The checked values of the settings after the name, in `Subscriber`'s order, from
        how each is written (in `fields.SETTINGS`' order, None when absent)."""
        checked = self.checked
        regions, topics, group_by, order, frequency, timezone, language, item_languages = written
        try:
            return (
                checked["regions"][regions],
                checked["topics"][topics],
                checked["group_by"][group_by],
                checked["frequency"][frequency],
                checked["order"][order],
                checked["timezone"][timezone],
                checked["language"][language],
                checked["item_languages"][item_languages],
            )
        except KeyError:  # a way of writing a setting not seen before: remembered as written
            for key, raw in zip(_AFTER_NAME, written, strict=True):
                checked[key][raw] = self.setting(key, raw.strip(" ") if raw else raw)
            return self.settings(written)

    @staticmethod
    def name(raw: str) -> str:
        try:
            return fields.check_name(_scalar(raw))
        except fields.FieldError as exc:
            raise NotPlain from exc

    def setting(self, key: str, raw: str | None) -> Any:
        known = self.checked[key]
        if raw not in known:
            if len(known) > 10_000:  # adversarial variety: stay bounded
                known.clear()
            known[raw] = self._check(key, raw)
        return known[raw]

    def _check(self, key: str, raw: str | None) -> Any:
        if key == "item_languages":
            value = _flow_list(raw) if raw and raw[0] == "[" else _scalar(raw)
            try:
                return fields.check_item_languages(value)
            except fields.FieldError as exc:
                raise NotPlain from exc
        if key in ("regions", "topics"):
            value = _flow_list(raw) if raw and raw[0] == "[" else _scalar(raw)
            kind = key[:-1]
            known = self.taxonomy.regions if key == "regions" else self.taxonomy.topics
            names, problems = fields.check_names(value, kind, known)
            if problems:
                raise NotPlain
            return names
        try:
            return fields.CHECKS[key](_scalar(raw))
        except fields.FieldError as exc:
            raise NotPlain from exc


def _scalar(raw: str | None) -> str | None:
    """A plain or quoted scalar as YAML reads it (None for null), or NotPlain."""
    if not raw:
        return None
    first = raw[0]
    if first == '"':
        inner = raw[1:-1]
        if len(raw) < 2 or raw[-1] != '"' or '"' in inner or "\\" in inner:
            raise NotPlain
        return inner
    if first == "'":
        inner = raw[1:-1]
        if len(raw) < 2 or raw[-1] != "'" or "'" in inner.replace("''", ""):
            raise NotPlain
        return inner.replace("''", "'")
    return _plain(raw, _NOT_IN_PLAIN)


def _plain(text: str, refused: re.Pattern[str]) -> str | None:
    if text[0] in _INDICATORS or refused.search(text):
        raise NotPlain
    tag = plain_scalar_tag(text)
    if tag == _STR:
        return text
    if tag == _NULL:
        return None
    raise NotPlain  # a number, a boolean, a date: the exact reader reports what it means


def _flow_list(raw: str) -> list[str | None]:
    """`[a, b]` of plain names."""
    inner = raw[1:-1]
    if raw[-1] != "]" or _NOT_IN_FLOW_ITEMS.search(inner):
        raise NotPlain
    if not inner.strip(" "):
        return []
    items = [item.strip(" ") for item in inner.split(",")]
    if not all(items):
        raise NotPlain  # "[a, , b]" or a trailing comma
    return [_plain(item, _NOT_IN_FLOW_ITEMS) for item in items]
