"""Reading YAML and JSON that someone else wrote, with limits: the file's size, its nesting depth
and how much YAML aliases may expand.

Why: PyYAML shares an aliased node instead of copying it, so a 1 KB "billion laughs" file loads
as a small graph that explodes only later, when something prints, copies or serialises it (77 s
and 3 GB for a model's tag); 100,000 nested `[` overflow Python's recursion; and a 1 GB file was
read whole. Here each is refused while the file is still being composed, before any object is
built, with one line naming the file, what was exceeded and the fix.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from cnc.experiment.errors import ExperimentError

MAX_FILE_MB = 64.0  # default size limit; CNC_MAX_FILE_MB overrides it
MAX_DEPTH = 64  # nesting levels of lists and mappings (experiment files need about 6)
MAX_ALIAS_COST = 100_000  # nodes plus scalar characters that aliases may add when expanded


def max_file_bytes() -> int:
    """The size limit in bytes (environment CNC_MAX_FILE_MB, else MAX_FILE_MB)."""
    raw = os.environ.get("CNC_MAX_FILE_MB", "")
    try:
        mb = float(raw) if raw.strip() else MAX_FILE_MB
    except ValueError:
        mb = MAX_FILE_MB
    return int(max(mb, 0.001) * (1 << 20))


def read_bounded_text(path: Path) -> str:
    """The file's text, refused (before reading) when it is larger than the size limit."""
    limit = max_file_bytes()
    try:
        size = path.stat().st_size
        if size > limit:
            raise ExperimentError(_too_big(path, size, limit))
        with open(path, "rb") as fh:  # a pipe, or a file growing meanwhile, stops at the limit too
            data = fh.read((min(size, limit) if stat.S_ISREG(os.fstat(fh.fileno()).st_mode) else limit) + 1)
    except FileNotFoundError:
        raise ExperimentError(f"{path}: file not found. Fix: check the path.") from None
    except OSError as exc:
        raise ExperimentError(f"{path}: cannot read file ({exc}).") from None
    if len(data) > limit:
        raise ExperimentError(_too_big(path, len(data), limit))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExperimentError(f"{path}: cannot read file ({exc}). Fix: save it as UTF-8 text.") from None


def _too_big(path: Path, size: int, limit: int) -> str:
    return (f"{path}: the file is {size / (1 << 20):,.1f} MB, over the {limit / (1 << 20):,.4g} MB limit for files "
            f"the app reads. Fix: point at the right file, or raise the limit with CNC_MAX_FILE_MB.")


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts nesting and what aliases expand to, and stops at the limits."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._alias_cost = 0
        self._open: set[str] = set()  # anchors of collections being composed
        self._costs: dict[int, int] = {}

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if event.anchor in self._open:
                raise yaml.YAMLError(f"the alias *{event.anchor} {_mark(event)} refers to a node that contains "
                                     f"it (a recursive structure)")
            if node is not None:
                self._alias_cost += self._cost(node)
                if self._alias_cost > MAX_ALIAS_COST:
                    raise yaml.YAMLError(f"aliases expand to more than {MAX_ALIAS_COST:,} nodes and characters "
                                         f"(at *{event.anchor} {_mark(event)}); an alias bomb is refused")
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise yaml.YAMLError(f"nesting deeper than {MAX_DEPTH} levels {_mark(self.peek_event())}")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_sequence_node(self, anchor):  # noqa: ANN001
        return self._composing(super().compose_sequence_node, anchor)

    def compose_mapping_node(self, anchor):  # noqa: ANN001
        return self._composing(super().compose_mapping_node, anchor)

    def _composing(self, compose, anchor):  # noqa: ANN001, ANN202
        """An anchored collection is open while its children are composed: an alias to it from
        inside would make it contain itself."""
        if anchor is None:
            return compose(anchor)
        self._open.add(anchor)
        try:
            return compose(anchor)
        finally:
            self._open.discard(anchor)

    def _cost(self, node: yaml.Node) -> int:
        """Nodes plus scalar characters of `node` fully expanded (memoized; aliases are shared nodes)."""
        stack, order = [node], []
        while stack:  # post-order without recursion
            cur = stack.pop()
            if id(cur) in self._costs:
                continue
            order.append(cur)
            stack.extend(_children(cur))
        for cur in reversed(order):
            if id(cur) not in self._costs:
                own = 1 + (len(cur.value) if isinstance(cur, yaml.ScalarNode) else 0)
                self._costs[id(cur)] = min(own + sum(self._costs.get(id(c), 0) for c in _children(cur)),
                                           MAX_ALIAS_COST + 1)
        return self._costs[id(node)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _mark(event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return f"at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def parse_yaml(text: str) -> Any:
    """yaml.safe_load within the depth and alias limits (raises yaml.YAMLError past them)."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def parse_json(text: str) -> Any:
    """json.loads within the depth limit (raises ValueError past it)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"nesting deeper than {MAX_DEPTH} levels") from None
    if _depth_exceeds(data, MAX_DEPTH):
        raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")
    return data


def _depth_exceeds(data: Any, limit: int) -> bool:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return False


def load_data_file(path: Path) -> Any:
    """A YAML or JSON file (by suffix) within the size, depth and alias limits; any fault is one
    ExperimentError naming the file."""
    text = read_bounded_text(path)
    try:
        if path.suffix.lower() == ".json":
            return parse_json(text)
        return parse_yaml(text)
    except (ValueError, yaml.YAMLError) as exc:  # json.JSONDecodeError is a ValueError
        kind = path.suffix.lstrip(".").upper() or "YAML"
        raise ExperimentError(f"{path}: not valid {kind}: {_one_line(exc)}. Fix: correct the file "
                              f"(limits: {MAX_DEPTH} levels of nesting, aliases expanding to at most "
                              f"{MAX_ALIAS_COST:,} nodes).") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
