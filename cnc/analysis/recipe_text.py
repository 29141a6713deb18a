"""How recipes read wherever a person sees them (docs/comparability.md, "Reading a value").

Why one module: the map tooltip, the Selection Details table, chart axes and legends, Refine
Comparison, the Behaviors column tooltips and the compare picker all describe the same thing — the
operations that made a model, in the order they were applied, with their parameter values
("magnitude prune 0.6 → fine-tune 5", "quantize int8") — and must agree. `step_text` is the one
formatter of an operation with its parameters; `model_name` the one name of a model in a recipe.

Pure Python, no Dash imports.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable

from cnc.experiment.forest import Experiment, Model

STEP_JOIN = " → "
_ORDINALS = ("", "", "second", "third", "fourth", "fifth")
_TITLE_WORD = re.compile(r"\b[A-Z][a-z]+\b")  # "Pruning", "Fine-Tune"; not "GPTQ", "ResNet", "P"


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


@lru_cache(maxsize=1024)  # an experiment has few operation names; recipes read them thousands of times
def operation_name(name: str) -> str:
    """An operation's name as it reads inside a recipe: title-case words in lower case
    ("Selective Pruning" -> "selective pruning"), acronyms and brand names kept ("GPTQ", "ResNet")."""
    return _TITLE_WORD.sub(lambda m: m[0].lower(), name)


def step_text(name: str, parameters: dict[str, Any], shown: Iterable[str] | None = None) -> str:
    """One applied operation: its name, then the values of its `shown` parameters (all by default).

    A value that only repeats the operation's name says nothing ("method quantize" of quantize) and
    is left out. A value alone reads well when one parameter remains ("fine-tune 5", "quantize
    int8"); with several, numbers keep their parameter's name and words stand alone ("selective
    pruning sparsity 0.4, feedforward")."""
    op = operation_name(name)
    params = {k: v for k, v in parameters.items()
              if v is not None and not (isinstance(v, str) and _repeats_name(op, v))}
    wanted = None if shown is None else set(shown)
    keys = [k for k in params if wanted is None or k in wanted]
    if not keys:
        return op
    if len(params) == 1:
        return f"{op} {value_text(params[keys[0]])}"
    return f"{op} " + ", ".join(value_text(params[k]) if isinstance(params[k], str) else f"{k} {value_text(params[k])}"
                                for k in keys)


@lru_cache(maxsize=4096)
def _repeats_name(op: str, value: str) -> bool:
    """'quantize' as the method of quantize, 'magnitude' as the criterion of magnitude prune."""
    if not value.strip():
        return False
    return re.search(rf"(?<![\w-]){re.escape(value.strip().lower())}(?![\w-])", op.lower()) is not None


def model_name(model: Model) -> str:
    """A model as a person names it in a recipe: its tag, unless the tag only restates the model's
    operation in the original format's "Name (key: value)" form (a root's "Train (epochs: 90)"
    would read unlike every other step) — then its id."""
    if model.tag and not _restates_operation(model):
        return model.tag
    return model.id


def model_title(experiment: Experiment, model_id: str) -> str:
    """A model's tooltip wherever its label may be shortened or wrapped (Pareto chips, Layers and
    Behaviors column headers): its name, its id and its full recipe, one per line."""
    recipe = recipe_text(experiment, model_id)
    return "\n".join(dict.fromkeys(t for t in (model_name(experiment.models[model_id]), model_id, recipe) if t))


def node_label(model: Model) -> str:
    """What a model's node on the map says: its tag; when the tag only restates the operation, the
    step as every recipe reads it ("quantize int8"), or a root's id."""
    if model.tag and not _restates_operation(model):
        return model.tag
    return step_text(model.operation.name, model.operation.parameters) if model.operation and model.base else model.id


def _restates_operation(model: Model) -> bool:
    op = model.operation
    if op is None or not model.tag or model.tag[:1].lower() != op.name[:1].lower():
        return False  # the common case, decided without spelling anything out
    if op.parameters and "(" not in model.tag:
        return False  # the original format spells parameters out as "Name (key: value)"
    try:
        return _restates(model.tag, op.name, tuple(op.parameters.items()))
    except TypeError:  # an unhashable parameter value (a YAML list): spell it out uncached
        return _restates.__wrapped__(model.tag, op.name, tuple(op.parameters.items()))


@lru_cache(maxsize=4096)  # tags repeat: every quantized model of a file may say the same
def _restates(tag: str, name: str, parameters: tuple) -> bool:
    spelled = name + "".join(f"{k}{value_text(v)}" for k, v in parameters)
    return _letters(tag) == _letters(spelled)


def _letters(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


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
