"""Drill-down groups: a class or a subgroup whose instances a Behaviors view can show alone."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np

from cnc.analysis.behavior_metrics import TASK_ATTRIBUTE, grouping
from cnc.analysis.parsing import parse_index

if TYPE_CHECKING:  # type hints only: cnc.analysis.behaviors re-exports this module
    from cnc.analysis.behavior_table import InstanceTable


@dataclass(frozen=True)
class Group:
    """A class (by index) or a subgroup (attribute = value) whose instances a view can show alone.

    Its `key` is the URL form: "class:8" or "attr:ink density:high" (attribute names may contain
    colons: parsing matches the declared names).
    """

    kind: str  # "class" or "attr"
    value: str  # the class index as text, or the attribute value
    attribute: str | None = None

    @property
    def key(self) -> str:
        return f"class:{self.value}" if self.kind == "class" else f"attr:{self.attribute}:{self.value}"

    @classmethod
    def from_key(cls, text: str | None, attributes: Iterable[str], class_names: list[str] = ()) -> Group | None:
        """Syntax only (values are not checked): "class:<index or name>" / "attr:<attribute>:<value>"."""
        kind, _, rest = (text or "").partition(":")
        if kind == "class":
            if parse_index(rest) is not None:
                return cls("class", str(parse_index(rest)))
            return cls("class", str(list(class_names).index(rest))) if rest in class_names else None
        if kind == "attr":  # the longest declared attribute name that prefixes the rest
            attr = max((a for a in attributes if rest.startswith(f"{a}:")), key=len, default=None)
            return cls("attr", rest[len(attr) + 1:], attr) if attr is not None else None
        return None

    def label(self, class_names: list[str]) -> str:
        """"class 8" / "ink density = high" (a class name that already says "class" is kept as is)."""
        if self.kind == "attr":
            return f"{self.attribute} = {self.value}"
        name = class_name(class_names, int(self.value))
        return name if name.lower().startswith("class ") else f"class {name}"


def group_for_row(mode: str, attribute: str | None, index: int, names: list[str]) -> Group | None:
    """The group behind row `index` of a class, subgroup or task view (None for other rows)."""
    if not 0 <= index < len(names):
        return None
    if mode == "classes":
        return Group("class", str(index))
    if mode == "subgroups" and attribute is not None:
        return Group("attr", names[index], attribute)
    if mode == "tasks":
        return Group("attr", names[index], TASK_ATTRIBUTE)
    return None


def parse_group(text: str | None, class_names: list[str], attributes: dict[str, list[str]],
                table: InstanceTable | None = None, n_classes: int = 0) -> Group | None:
    """A group from its key, or None when malformed or unknown.

    A class is its index (or, for hand-written links, its exact name); it must be below the number
    of classes (class names, `n_classes`, or the table's labels). A subgroup needs a declared
    attribute and one of its values (checked on the table's cached subgroup names when given).
    """
    group = Group.from_key(text, attributes, class_names)
    if group is None:
        return None
    if group.kind == "class":
        n = max(len(class_names), n_classes, int(table.labels.max(initial=-1)) + 1 if table is not None else 0)
        return group if int(group.value) < n else None
    known = grouping(table, "subgroups", class_names, attributes, group.attribute).names if table is not None \
        else attributes[group.attribute]
    return group if group.value in known else None


def group_mask(table: InstanceTable, group: Group, attributes: dict[str, list[str]]) -> np.ndarray:
    """bool[N]: which instances belong to the group (the subgroup codes are cached per attribute)."""
    if group.kind == "class":
        return table.labels == int(group.value)
    g = grouping(table, "subgroups", [], attributes, group.attribute)
    if group.value not in g.names:
        return np.zeros(table.n, dtype=bool)
    return g.codes == g.names.index(group.value)


def group_instances(table: InstanceTable, group: Group, attributes: dict[str, list[str]]) -> np.ndarray:
    """Indices of the group's instances, ascending."""
    return np.flatnonzero(group_mask(table, group, attributes))


def class_name(class_names: list[str], k: int) -> str:
    return class_names[k] if 0 <= k < len(class_names) else str(k)
