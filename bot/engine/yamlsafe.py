"""Safe YAML loading that remembers where every key and value was written.

Only plain data is built (``yaml.SafeLoader``: no Python tags). Anchors and aliases are
refused outright — flows do not need them, and refusing them makes "billion laughs"
documents fail at once instead of expanding. Duplicate keys are problems too, reported
with their position like every other problem.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from bot.engine.errors import Loc, Problem

MAX_BYTES = 1024 * 1024
MAX_NODES = 50_000


class LocDict(dict):  # type: ignore[type-arg]
    """A mapping that knows where it, its keys and its values stand in the file."""

    loc: Loc
    key_locs: dict[Any, Loc]
    value_locs: dict[Any, Loc]

    def key_loc(self, key: Any) -> Loc:
        """Where ``key`` is written (the mapping's own place when absent)."""
        return self.key_locs.get(key, self.loc)

    def value_loc(self, key: Any) -> Loc:
        """Where the value of ``key`` is written (the mapping's own place when absent)."""
        return self.value_locs.get(key, self.loc)


class LocList(list):  # type: ignore[type-arg]
    """A sequence that knows where it and its items stand in the file."""

    loc: Loc
    item_locs: list[Loc]


def _loc(mark: yaml.Mark) -> Loc:
    return Loc(mark.line + 1, mark.column + 1)


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str, path: str) -> None:
        super().__init__(stream)
        self.path = path
        self.problems: list[Problem] = []
        self.count = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(_loc(event.start_mark), "anchors and aliases (*name) are not allowed in flows")
        if self.check_event(yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent):
            event = self.peek_event()
            if getattr(event, "anchor", None):
                raise _Refused(_loc(event.start_mark), "anchors (&name) are not allowed in flows")
        self.count += 1
        if self.count > MAX_NODES:
            raise _Refused(_loc(self.peek_event().start_mark), f"more than {MAX_NODES} YAML nodes")
        return super().compose_node(parent, index)


class _Refused(Exception):
    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> LocDict:
    result = LocDict()
    result.loc = _loc(node.start_mark)
    result.key_locs = {}
    result.value_locs = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            loader.problems.append(Problem(loader.path, _loc(key_node.start_mark), "a key must be plain text"))
            continue
        if key in result:
            first = result.key_locs[key]
            loader.problems.append(
                Problem(loader.path, _loc(key_node.start_mark), f"duplicate key {key!r} (first at line {first.line})")
            )
            continue
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_locs[key] = _loc(key_node.start_mark)
        result.value_locs[key] = _loc(value_node.start_mark)
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode, deep: bool = False) -> LocList:
    result = LocList(loader.construct_object(child, deep=True) for child in node.value)
    result.loc = _loc(node.start_mark)
    result.item_locs = [_loc(child.start_mark) for child in node.value]
    return result


def _refuse(node: yaml.Node, message: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, message, node.start_mark)


def _short(node: yaml.ScalarNode) -> str:
    value = str(node.value)
    return repr(value if len(value) <= 40 else value[:40] + "...")


# PyYAML's own scalar constructors raise ValueError, KeyError or AttributeError on values
# such as `!!int abc`, `!!bool maybe`, a 5000-digit number or `!!timestamp 2026-13-45`;
# these wrappers turn each into a YAML problem at the value's place.
def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:
        raise _refuse(node, f"{_short(node)} is not a whole number (or has too many digits)") from None


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    try:
        return yaml.SafeLoader.construct_yaml_float(loader, node)
    except ValueError:
        raise _refuse(node, f"{_short(node)} is not a number") from None


def _construct_bool(loader: _Loader, node: yaml.ScalarNode) -> bool:
    value = loader.construct_scalar(node)
    if value.lower() not in loader.bool_values:
        raise _refuse(node, f"{_short(node)} is not true or false")
    return loader.bool_values[value.lower()]


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    if not loader.timestamp_regexp.match(loader.construct_scalar(node)):
        raise _refuse(node, f"{_short(node)} is not a date or time")
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        raise _refuse(node, f"{_short(node)} is not a valid date or time") from None


# YAML 1.1 reads yes / no / on / off as booleans: a choice with words [yes, no] would
# silently become [True, False]. Flows follow YAML 1.2: only true and false are booleans.
# Likewise 2026-11-20 stays text (YAML 1.2 has no implicit dates), so it can be said,
# compared and saved like any other text — and 2026-13-45 is not an error.
_IMPLICIT_DROPPED = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _IMPLICIT_DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _Loader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"))
    )
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def load(text: str, path: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; return the data (None on failure) and the problems."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return None, [Problem(path, Loc(1, 1), f"the file is larger than {MAX_BYTES // 1024} KB")]
    try:
        # The reader refuses control characters (and lone surrogates) as soon as it is made.
        loader = _Loader(text, path)
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        loc = Loc(before.count("\n") + 1, exc.position - before.rfind("\n"))
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return None, [Problem(path, loc, f"YAML: character {char} is not allowed ({exc.reason})")]
    try:
        data = loader.get_single_data()
    except _Refused as exc:
        return None, [Problem(path, exc.loc, exc.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = _loc(mark) if mark is not None else Loc(1, 1)
        message = (exc.problem or exc.context or "not valid YAML").strip()
        return None, [Problem(path, loc, f"YAML: {message}")]
    except yaml.YAMLError as exc:
        return None, [Problem(path, Loc(1, 1), f"YAML: {exc}")]
    except RecursionError:
        return None, [Problem(path, Loc(1, 1), "YAML nested too deeply")]
    finally:
        loader.dispose()
    return data, loader.problems
