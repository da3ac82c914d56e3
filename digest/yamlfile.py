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


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class YamlSyntaxError(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


def parse_yaml(text: str) -> Any:
    """Parse YAML text; mappings come back as LineDict. Raises YamlSyntaxError with a line."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise _syntax_error(exc) from exc


def _syntax_error(exc: yaml.YAMLError) -> YamlSyntaxError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return YamlSyntaxError(mark.line + 1 if mark else 0, str(exc.problem or exc))
    return YamlSyntaxError(0, str(exc))


def read_yaml(path: Path) -> Any:
    return parse_yaml(path.read_text(encoding="utf-8"))


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
            finally:
                loader.dispose()

    def _walk(self, loader: Any) -> Iterator[Any]:
        loader.get_event()  # StreamStart
        if loader.check_event(yaml.StreamEndEvent):
            return  # an empty file
        loader.get_event()  # DocumentStart
        if not loader.check_event(yaml.MappingStartEvent):
            if _build(loader, {}) is not None:
                self.shape_error = f"expected '{self.key}:' at the top"
            return
        loader.get_event()
        while not loader.check_event(yaml.MappingEndEvent):
            line = loader.peek_event().start_mark.line + 1
            name = _build(loader, {})
            if name == self.key and loader.check_event(yaml.SequenceStartEvent):
                self.found = True
                loader.get_event()
                anchors: dict[str, Any] = {}
                while not loader.check_event(yaml.SequenceEndEvent):
                    yield _build(loader, anchors)
                loader.get_event()
            else:
                value = _build(loader, {})
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


def _build(loader: Any, anchors: dict[str, Any]) -> Any:
    """One value, straight from the parser's events (no node graph): mappings come back as
    LineDict, strings as they are, other scalars through PyYAML's own constructors."""
    return _value(loader, loader.get_event(), anchors)


def _value(loader: Any, event: Any, anchors: dict[str, Any]) -> Any:
    """The value that starts with `event`."""
    value: Any
    if isinstance(event, yaml.ScalarEvent):
        tag = event.tag
        if tag is None or tag == "!":
            tag = _STR if event.style else _plain_tag(loader, event)
        if tag in (_STR, _MERGE):
            value = event.value  # "<<", the merge key, is handled by the mapping
        else:
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            value = loader.construct_object(node, deep=True)
    elif isinstance(event, yaml.AliasEvent):
        if event.anchor not in anchors:
            raise yaml.composer.ComposerError(
                None, None, f"unknown alias {event.anchor!r}", event.start_mark
            )
        return anchors[event.anchor]
    elif isinstance(event, yaml.SequenceStartEvent):
        value = []
        while not isinstance(item := loader.get_event(), yaml.SequenceEndEvent):
            value.append(_value(loader, item, anchors))
    else:  # MappingStartEvent
        value = LineDict()
        value.line, value.key_lines = event.start_mark.line + 1, {}
        merged: list[Any] = []
        while not isinstance(key_event := loader.get_event(), yaml.MappingEndEvent):
            key = _value(loader, key_event, anchors)
            item = _build(loader, anchors)
            if key == "<<":  # a YAML merge key: the anchored mapping(s) fill in what is unset
                merged.extend(item if isinstance(item, list) else [item])
                continue
            value[key] = item
            value.key_lines[str(key)] = key_event.start_mark.line + 1
        for source in merged:
            if isinstance(source, dict):
                for key, item in source.items():
                    value.setdefault(key, item)
    if event.anchor:
        anchors[event.anchor] = value
    return value


def _plain_tag(loader: Any, event: Any) -> str:
    text = event.value
    tag = _plain_tags.get(text)
    if tag is None:
        tag = loader.resolve(yaml.ScalarNode, text, event.implicit)
        if len(text) <= _PLAIN_TAG_LENGTH and len(_plain_tags) < _PLAIN_TAGS_KEPT:
            _plain_tags[text] = tag
    return tag
