"""One explaining variable while it is being built (`Column`): its values per selected model, how
they sort and read. Its own module so that naming (variable_names) and building (explain_columns)
can both use it without importing each other."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnc.analysis.explain_search import NONE, Tree
from cnc.analysis.recipe_text import value_text


@dataclass(eq=False)  # compared by identity: columns are looked up in lists
class Column:
    """A variable while it is being built: values per selected model and a sort key per value."""

    kind: str
    label: str
    values: dict[str, Any]  # model id -> value (a sequence's value reads as its steps, in applied order)
    keys: dict[Any, tuple]  # value -> sort key
    op: str | None = None  # the internal operation name of a presence / parameter variable
    param: str | None = None
    owner: str | None = None  # display only: the one operation a parameter of an operation-type step belongs to
    nodes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # model -> tree nodes its value stands for
    tree: Tree | None = None
    texts: dict[Any, str] = field(default_factory=dict)  # how an operation-type value reads
    codes: np.ndarray | None = field(default=None, repr=False)  # values as small ints, see `_encode`

    def distinct(self) -> tuple:
        return tuple(sorted(set(self.values.values()), key=self.keys.__getitem__))

    def identity(self) -> tuple | None:
        """Same-identity columns (same operation, same parameter) come from disjoint parts of the
        tree and merge into one; operation-type columns at different steps stay apart."""
        if self.op is not None and self.kind in ("presence", "parameter"):
            return (self.kind, self.op, self.param)
        return None

    def text(self, value: Any) -> str:
        """How a value reads (docs/comparability.md, "Reading a value")."""
        if self.kind == "presence":
            return "no" if value == NONE else "yes"
        if value == NONE:
            return NONE
        if value in self.texts:
            return self.texts[value]
        return value_text(value)

    def restricted(self, models: list[str]) -> Column:
        # nodes are shared, not copied: they are only ever looked up for models in `values`
        return Column(self.kind, self.label, {m: self.values[m] for m in models}, self.keys, self.op,
                      self.param, self.owner, self.nodes, self.tree, self.texts)
