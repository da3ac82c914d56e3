"""Read YAML keeping the line of every mapping key, so errors can name file, line and field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


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
            node = _compose(loader, {})
            if loader.construct_document(node) is not None:
                self.shape_error = f"expected '{self.key}:' at the top"
            return
        loader.get_event()
        while not loader.check_event(yaml.MappingEndEvent):
            key_node = _compose(loader, {})
            name = loader.construct_document(key_node)
            line = key_node.start_mark.line + 1
            if name == self.key and loader.check_event(yaml.SequenceStartEvent):
                self.found = True
                loader.get_event()
                anchors: dict[str, yaml.Node] = {}
                while not loader.check_event(yaml.SequenceEndEvent):
                    yield loader.construct_document(_compose(loader, anchors))
                loader.get_event()
            else:
                value = loader.construct_document(_compose(loader, {}))
                if name == self.key:
                    if value is not None:
                        self.shape_error = f"'{self.key}:' must be followed by a list"
                else:
                    self.other_keys.append((str(name), line))
        loader.get_event()


def _compose(loader: Any, anchors: dict[str, yaml.Node]) -> yaml.Node:
    """One node (and its children) from the parser's events: what PyYAML's composer does for
    a whole document, done for one entry at a time."""
    event = loader.get_event()
    if isinstance(event, yaml.AliasEvent):
        if event.anchor not in anchors:
            raise yaml.composer.ComposerError(None, None, f"unknown alias {event.anchor!r}",
                                              event.start_mark)
        return anchors[event.anchor]
    node: yaml.Node
    if isinstance(event, yaml.ScalarEvent):
        tag = event.tag
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    elif isinstance(event, yaml.SequenceStartEvent):
        tag = event.tag if event.tag not in (None, "!") else loader.resolve(
            yaml.SequenceNode, None, event.implicit)
        node = yaml.SequenceNode(tag, [], event.start_mark, None, event.flow_style)
        while not loader.check_event(yaml.SequenceEndEvent):
            node.value.append(_compose(loader, anchors))
        node.end_mark = loader.get_event().end_mark
    else:  # MappingStartEvent
        tag = event.tag if event.tag not in (None, "!") else loader.resolve(
            yaml.MappingNode, None, event.implicit)
        node = yaml.MappingNode(tag, [], event.start_mark, None, event.flow_style)
        while not loader.check_event(yaml.MappingEndEvent):
            key = _compose(loader, anchors)
            node.value.append((key, _compose(loader, anchors)))
        node.end_mark = loader.get_event().end_mark
    if getattr(event, "anchor", None):
        anchors[event.anchor] = node
    return node
