"""Evaluation instances of a generative task from a local JSON or JSONL file.

Each instance is an object such as `{"question": ..., "context": ..., "answers": [...], "type": ...}`.
A prompt template (Python `str.format` fields named after the instance's keys) turns it into the
prompt the model sees; the answers are the references (the first one is teacher-forced). Other
short fields become categorical attributes for subgroup rows. Errors name the file, the instance
and the field, and say how to fix them.
"""
from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnc.experiment.bounded_load import parse_json
from cnc.experiment.errors import TaskError

ANSWER_KEYS = ("answers", "answer", "references", "reference", "target")
SKIPPED_ATTRIBUTE_KEYS = {"id", "idx", "index", "attributes"}


@dataclass(frozen=True)
class PromptSet:
    """Prompts (template applied), references, and attributes per instance."""

    prompts: list[str]
    references: list[list[str]]
    attributes: dict[str, list[str]]


def read_instances(path: str | Path) -> list[dict]:
    """The instance objects of a .json (a list, or {"instances": [...]}) or .jsonl file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TaskError(f"{path}: evaluation data file not found (task option 'data'; "
                        f"relative paths start at {Path.cwd()}).")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        items = []
        for line_no, line in enumerate(text.splitlines(), 1):
            if line.strip():
                items.append(_parse(line, f"{path}:{line_no}"))
    else:
        data = _parse(text, str(path))
        items = data.get("instances", data.get("data")) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise TaskError(f"{path}: expected a list of instances (or {{\"instances\": [...]}}); "
                            f"got {type(data).__name__}.")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise TaskError(f"{path}: instance {i} is a {type(item).__name__}; each instance must be "
                            "an object like {\"prompt\": ..., \"answers\": [...]}.")
    if not items:
        raise TaskError(f"{path}: no instances.")
    return items


def _parse(text: str, where: str) -> Any:
    try:
        return parse_json(text)  # json.loads within a nesting limit (no RecursionError)
    except json.JSONDecodeError as exc:
        raise TaskError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}).") from None
    except ValueError as exc:
        raise TaskError(f"{where}: not valid evaluation data ({exc}). Fix: one flat object per instance.") from None


def default_template(item: dict) -> str:
    """`{prompt}` when instances have a prompt; else a question (with its context) and 'Answer:'."""
    if "prompt" in item:
        return "{prompt}"
    if "question" in item:
        return ("{context}\n\nQuestion: {question}\nAnswer:" if "context" in item
                else "Question: {question}\nAnswer:")
    raise TaskError("instances have neither 'prompt' nor 'question': set the task option "
                    "'prompt_template', e.g. 'Translate: {source}\\n'.")


def template_fields(template: str) -> set[str]:
    try:
        return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as exc:
        raise TaskError(f"prompt_template {template!r} is not a valid format string ({exc}); "
                        "write fields as {name} and literal braces as {{ }}.") from None


def answers_of(item: dict, where: str) -> list[str]:
    for key in ANSWER_KEYS:
        if key in item:
            value = item[key]
            if isinstance(value, dict) and "text" in value:  # SQuAD style {"text": [...], ...}
                value = value["text"]
            values = [value] if isinstance(value, (str, int, float)) else value
            if not isinstance(values, list) or not values or not all(isinstance(v, (str, int, float)) for v in values):
                raise TaskError(f"{where}: field '{key}' must be a string or a non-empty list of strings; "
                                f"got {value!r}.")
            return [str(v) for v in values]
    raise TaskError(f"{where}: no reference answer; add a field 'answers' (a list of strings) "
                    f"or one of {', '.join(ANSWER_KEYS[1:])}.")


def load_prompt_set(path: str | Path, template: str | None = None,
                    attributes: list[str] | None = None, limit: int | None = None) -> PromptSet:
    """Read instances, apply the prompt template, and pick the attribute fields: the named ones,
    else each instance's "attributes" object, else every other short scalar field that groups
    instances (one with a distinct value per instance is an identifier, not a subgroup)."""
    items = read_instances(path)
    if limit is not None:
        items = items[:int(limit)]
    template = template or default_template(items[0])
    used = template_fields(template)
    prompts, references = [], []
    for i, item in enumerate(items):
        where = f"{path}: instance {i}"
        try:
            prompts.append(template.format(**item))
        except KeyError as exc:
            raise TaskError(f"{where}: prompt_template uses {{{exc.args[0]}}} but the instance has no "
                            f"field '{exc.args[0]}' (fields: {', '.join(sorted(item))}).") from None
        except (IndexError, ValueError, AttributeError) as exc:
            raise TaskError(f"{where}: prompt_template {template!r} cannot be applied ({exc}).") from None
        references.append(answers_of(item, where))
    return PromptSet(prompts, references, _attributes(items, used, attributes, path))


def _attributes(items: list[dict], used: set[str], names: list[str] | None, path: Any) -> dict[str, list[str]]:
    if names is not None:
        missing = [(i, n) for n in names for i, item in enumerate(items) if n not in item]
        if missing:
            i, n = missing[0]
            raise TaskError(f"{path}: instance {i} has no attribute field '{n}' (task option 'attributes').")
        return {n: [str(item[n]) for item in items] for n in names}
    if all(isinstance(item.get("attributes"), dict) for item in items):
        keys = sorted({k for item in items for k in item["attributes"]})
        return {k: [str(item["attributes"].get(k, "")) for item in items] for k in keys}
    skip = used | set(ANSWER_KEYS) | SKIPPED_ATTRIBUTE_KEYS
    keys = [k for k in items[0] if k not in skip]
    out = {}
    for k in keys:
        values = [item.get(k) for item in items]
        if not all(isinstance(v, (str, int, bool)) and len(str(v)) <= 40 for v in values):
            continue
        strings = [str(v) for v in values]
        if len(items) > 1 and len(set(strings)) == len(strings):
            continue
        out[k] = strings
    return out
