"""Read YAML keeping the line of every mapping key, so errors can name file, line and field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .caches import register_mapping


class LineDict(dict):
    """A dict from YAML that remembers where it and each of its keys were written."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


MAX_EXPANDED = 100_000  # values a document may stand for once its aliases are expanded
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LineLoader(yaml.SafeLoader):
    pass


class _NoAliasLoader(_LineLoader):
    """For files where an alias has no use: a Markdown item's front matter."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _error(f"alias *{event.anchor} is not allowed here: write the value out", event)
        return super().compose_node(parent, index)


def _error(problem: str, where: Any) -> yaml.constructor.ConstructorError:
    """A YAML error at a node or event, reported with its line like the parser's own."""
    return yaml.constructor.ConstructorError(None, None, problem, where.start_mark)


def _key(loader: Any, key_node: Any) -> Any:
    key = loader.construct_object(key_node, deep=True)
    if isinstance(key, list | dict | set):
        raise _error(f"a key must be a plain name, not a {type(key).__name__}", key_node)
    return key


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    first_lines: dict[Any, int] = {}
    for key_node, _ in node.value:  # the keys written here, before merges fill in others
        if key_node.tag == _MERGE_TAG:
            continue
        key = _key(loader, key_node)
        if key in first_lines:
            raise _error(f"duplicate key '{key}' (first on line {first_lines[key]})", key_node)
        first_lines[key] = key_node.start_mark.line + 1
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = _key(loader, key_node)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class YamlSyntaxError(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


def _expanded_size(node: Any, sizes: dict[int, int]) -> int:
    """How many values `node` stands for with every alias written out (each node counted once
    per use: an alias bomb's billions come out in linear time)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a node inside itself (a recursive alias) counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return size


def parse_yaml(text: str, aliases: bool = True) -> Any:
    """Parse YAML text; mappings come back as LineDict. With `aliases`, they are allowed as long
    as the document does not expand past MAX_EXPANDED values; without, any alias is refused.
    Duplicate keys are refused. Raises YamlSyntaxError with a line."""
    loader = (_LineLoader if aliases else _NoAliasLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if aliases and _expanded_size(node, {}) > MAX_EXPANDED:
            raise _error(
                f"its aliases (*name) expand to more than {MAX_EXPANDED:,} values: write the "
                "values out",
                node,
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc) from exc
    except RecursionError as exc:
        raise YamlSyntaxError(0, "nested too deeply to read (hundreds of levels)") from exc
    finally:
        loader.dispose()


def _syntax_error(exc: yaml.YAMLError) -> YamlSyntaxError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return YamlSyntaxError(mark.line + 1 if mark else 0, str(exc.problem or exc))
    if isinstance(exc, yaml.reader.ReaderError):
        return YamlSyntaxError(0, f"not UTF-8 text: {exc.reason} at character {exc.position}")
    return YamlSyntaxError(0, str(exc))


def decode(data: bytes) -> str:
    """A YAML file's bytes as text: UTF-8 (a BOM is fine). Raises YamlSyntaxError naming the
    line of the first byte that is not UTF-8, and saying what to do."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YamlSyntaxError(1, "the file is UTF-16: save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlSyntaxError(
            line, f"not UTF-8 text (byte 0x{data[exc.start]:02x}): save the file as UTF-8"
        ) from exc


def read_yaml(path: Path) -> Any:
    return parse_yaml(decode(path.read_bytes()))


def where(path: Path | str, line: int | None) -> str:
    """`path:line`, the prefix every input error starts with."""
    return f"{path}:{line}" if line else str(path)


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StreamLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """libyaml's parser with our line-keeping mappings."""


_StreamLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class ListStream:
    """Reads a file shaped `KEY: [entry, entry, ...]` one entry at a time, so a file of
    100,000 subscribers is never held as one YAML node graph (hundreds of MB).

    `entries()` yields each constructed entry (mappings as LineDict); afterwards `other_keys`
    holds the other top-level keys with their lines, and `shape_error` says when the file was
    not a mapping with a list under KEY. Raises YamlSyntaxError with the line."""

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key = path, key
        self.other_keys: list[tuple[str, int]] = []
        self.shape_error: str | None = None
        self.found = False

    def entries(self) -> Iterator[Any]:
        with open(self.path, "rb") as stream:
            loader = _StreamLoader(stream)
            try:
                yield from self._walk(loader)
            except yaml.YAMLError as exc:
                raise _syntax_error(exc) from exc
            except RecursionError as exc:
                raise YamlSyntaxError(0, "nested too deeply to read (hundreds of levels)") from exc
            finally:
                loader.dispose()

    def _walk(self, loader: Any) -> Iterator[Any]:
        loader.get_event()  # StreamStart
        if loader.check_event(yaml.StreamEndEvent):
            return  # an empty file
        loader.get_event()  # DocumentStart
        if not loader.check_event(yaml.MappingStartEvent):
            if _build(loader, _Anchors()) is not None:
                self.shape_error = f"expected '{self.key}:' at the top"
            return
        loader.get_event()
        while not loader.check_event(yaml.MappingEndEvent):
            line = loader.peek_event().start_mark.line + 1
            name = _build(loader, _Anchors())
            if name == self.key and loader.check_event(yaml.SequenceStartEvent):
                self.found = True
                loader.get_event()
                anchors = _Anchors()
                while not loader.check_event(yaml.SequenceEndEvent):
                    anchors.left = anchors.ENTRY_VALUES  # each entry has its own allowance
                    yield _build(loader, anchors)
                loader.get_event()
            else:
                value = _build(loader, _Anchors())
                if name == self.key:
                    if value is not None:
                        self.shape_error = f"'{self.key}:' must be followed by a list"
                else:
                    self.other_keys.append((str(name), line))
        loader.get_event()


_STR, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"
# What plain (unquoted) scalars resolve to: a function of the text alone, and the same few
# keys and names recur on every entry of a large file.
_plain_tags: dict[str, str] = {}
_PLAIN_TAGS_KEPT, _PLAIN_TAG_LENGTH = 4096, 40
register_mapping("digest.yamlfile.plain_tags", _plain_tags)


class _Anchors:
    """The anchors of one list being read, and how many values each stands for written out.
    An entry may stand for at most `ENTRY_VALUES` values: aliases that a tool writes for a
    shared list pass, an alias bomb (aliases of aliases, billions of values) stops at once."""

    ENTRY_VALUES = 10_000

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}
        self.left = self.ENTRY_VALUES

    def spend(self, size: int, event: Any) -> None:
        self.left -= size
        if self.left < 0:
            raise _error(
                f"aliases (*name) here expand to more than {self.ENTRY_VALUES:,} values: "
                "write the values out",
                event,
            )


def _build(loader: Any, anchors: _Anchors) -> Any:
    """One value, straight from the parser's events (no node graph): mappings come back as
    LineDict, strings as they are, other scalars through PyYAML's own constructors."""
    return _value(loader, loader.get_event(), anchors)


def _value(loader: Any, event: Any, anchors: _Anchors) -> Any:
    """The value that starts with `event`."""
    value: Any
    before = anchors.left
    if isinstance(event, yaml.AliasEvent):
        if event.anchor not in anchors.values:
            raise _error(f"unknown alias {event.anchor!r}", event)
        anchors.spend(anchors.sizes[event.anchor], event)
        return anchors.values[event.anchor]
    anchors.spend(1, event)
    if isinstance(event, yaml.ScalarEvent):
        tag = event.tag
        if tag is None or tag == "!":
            tag = _STR if event.style else _plain_tag(loader, event)
        if tag in (_STR, _MERGE):
            value = event.value  # "<<", the merge key, is handled by the mapping
        else:
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            value = loader.construct_object(node, deep=True)
    elif isinstance(event, yaml.SequenceStartEvent):
        value = []
        while not isinstance(item := loader.get_event(), yaml.SequenceEndEvent):
            value.append(_value(loader, item, anchors))
    else:  # MappingStartEvent
        value = _mapping(loader, event, anchors)
    if event.anchor:
        anchors.values[event.anchor] = value
        anchors.sizes[event.anchor] = before - anchors.left
    return value


def _mapping(loader: Any, event: Any, anchors: _Anchors) -> LineDict:
    value = LineDict()
    value.line, value.key_lines = event.start_mark.line + 1, {}
    merged: list[Any] = []
    while not isinstance(key_event := loader.get_event(), yaml.MappingEndEvent):
        key = _value(loader, key_event, anchors)
        if isinstance(key, list | dict):
            raise _error(f"a key must be a plain name, not a {type(key).__name__}", key_event)
        item = _build(loader, anchors)
        if key == "<<":  # a YAML merge key: the anchored mapping(s) fill in what is unset
            merged.extend(item if isinstance(item, list) else [item])
            continue
        if key in value:
            first = value.key_lines[str(key)]
            raise _error(f"duplicate key '{key}' (first on line {first})", key_event)
        value[key] = item
        value.key_lines[str(key)] = key_event.start_mark.line + 1
    for source in merged:
        if isinstance(source, dict):
            for key, item in source.items():
                value.setdefault(key, item)
    return value


def _plain_tag(loader: Any, event: Any) -> str:
    if event.implicit != (True, False):
        return str(loader.resolve(yaml.ScalarNode, event.value, event.implicit))
    return plain_scalar_tag(event.value)


_resolver = yaml.resolver.Resolver()
# Plain scalars starting with any other character are strings: no implicit resolver is tried.
_RESOLVED_FIRST = frozenset(k for k in yaml.resolver.Resolver.yaml_implicit_resolvers if k)
_ANY_FIRST = None in yaml.resolver.Resolver.yaml_implicit_resolvers


def plain_scalar_tag(text: str) -> str:
    """What a plain (unquoted) scalar's text resolves to under the safe loader's rules: the
    str, null, bool, int, float or timestamp tag."""
    if text and text[0] not in _RESOLVED_FIRST and not _ANY_FIRST:
        return _STR
    tag = _plain_tags.get(text)
    if tag is None:
        tag = str(_resolver.resolve(yaml.ScalarNode, text, (True, False)))
        if len(text) <= _PLAIN_TAG_LENGTH and len(_plain_tags) < _PLAIN_TAGS_KEPT:
            _plain_tags[text] = tag
    return tag
