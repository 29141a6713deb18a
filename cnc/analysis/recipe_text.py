"""How recipes read wherever a person sees them (docs/comparability.md, "Reading a recipe").

Why one module: the map tooltip, the Selection Details table, chart axes and legends and Refine
Comparison all describe the same thing — the operations that made a model, in the order they were
applied, with their parameter values ("magnitude prune 0.6 → fine-tune 5") — and must agree.

Pure Python, no Dash imports.
"""
from __future__ import annotations

from typing import Any, Iterable

from cnc.experiment.forest import Experiment, Model

STEP_JOIN = " → "
_ORDINALS = ("", "", "second", "third", "fourth", "fifth")


def value_text(value: Any) -> str:
    """A parameter value as a person writes it: 0.5 not 0.500000, lists and mappings spelled out."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {value_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        if all(isinstance(v, tuple) and len(v) == 2 for v in items) and isinstance(value, tuple) and items:
            return ", ".join(f"{k} {value_text(v)}" for k, v in items)  # a frozen mapping
        return ", ".join(value_text(v) for v in items)
    return str(value)


def operation_text(model: Model) -> str:
    """The step that made a model, as the map and tables read it ("magnitude prune 0.5")."""
    return step_text(model.operation.name, model.operation.parameters) if model.operation else "root model"


def step_text(name: str, parameters: dict[str, Any], shown: Iterable[str] | None = None) -> str:
    """One applied operation: its name, then the values of its `shown` parameters (all by default).

    A value alone reads well when the operation has one parameter ("fine-tune 5"); with several,
    each value gets its parameter name ("quantize amount int8, method static")."""
    keys = [k for k in parameters if shown is None or k in set(shown)]
    keys = [k for k in keys if parameters[k] is not None]
    if not keys:
        return name
    if len(parameters) == 1:
        return f"{name} {value_text(parameters[keys[0]])}"
    return f"{name} " + ", ".join(f"{k} {value_text(parameters[k])}" for k in keys)


def ordinal_name(name: str, k: int) -> str:
    """The k-th application of an operation on one path: "magnitude prune", "second magnitude prune"."""
    if k <= 1:
        return name
    word = _ORDINALS[k] if k < len(_ORDINALS) else f"{k}th"
    return f"{word} {name}"


def recipe_steps(experiment: Experiment, model_id: str, start: str | None = None) -> list[str]:
    """Step texts from below `start` (an ancestor; default: the root) down to the model."""
    path = experiment.path_to_root(model_id)
    if start is not None and start in path:
        path = path[path.index(start) + 1:]
    out = []
    for mid in path:
        op = experiment.models[mid].operation
        if op is not None and (experiment.models[mid].base is not None or start is None):
            out.append(step_text(op.name, op.parameters))
    return out


def recipe_text(experiment: Experiment, model_id: str, start: str | None = None) -> str:
    """The model's recipe in applied order, e.g. "magnitude prune 0.6 → fine-tune 5"; "" when the
    model is `start` itself or a root without an operation."""
    return STEP_JOIN.join(recipe_steps(experiment, model_id, start))
