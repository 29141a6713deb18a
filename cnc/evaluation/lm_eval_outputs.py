"""lm-evaluation-harness samples -> the stored "task" and "outputs" dicts of generative models
(docs/generative.md section 4), so Behaviors reads harness runs like models the app evaluated.

Instances are the union of every model's documents, identified by (task, doc_id), ordered by task
(in the order models list them) then doc_id. A model that lacks a document has an empty output, NaN
scores and `present` False there; `notices` says which models lack how many. The score
"exact_match" is each document's right/wrong (see `_correct`), so Behaviors counts flips across
tasks; the harness's own per-document metrics keep their names ("acc", "exact_match,strict-match").
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field

import numpy as np

from cnc.analysis.text_scores import repetition, token_f1
from cnc.experiment.errors import ExperimentError
from cnc.experiment.lm_eval import HarnessRun, Sample, read_samples

EXACT = "exact_match"  # the score Behaviors counts right -> wrong flips with
F1 = "f1"  # SQuAD token F1 of generated answers, when the harness logged no per-document f1


@dataclass
class Aligned:
    """Everything precompute stores for a set of harness runs."""

    task: dict
    outputs: dict[str, dict]  # model id -> outputs dict
    notices: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # model id -> why its samples are unreadable


def _references(sample: Sample) -> list[str]:
    """The gold answer(s) as text: a choice's text for multiple choice (the target is its index)."""
    target = sample.target
    if isinstance(target, str) and target.startswith("[") and target.endswith("]"):
        try:  # the harness writes str(target): several gold answers arrive as "[0, 2]" or "['a', 'b']"
            target = ast.literal_eval(target)
        except (ValueError, SyntaxError):
            pass
    golds = target if isinstance(target, list) else [target]
    out = []
    for gold in golds:
        text = str(gold)
        if sample.choices:
            try:
                index = int(text)
            except ValueError:
                index = -1
            text = sample.choices[index] if 0 <= index < len(sample.choices) else text
        out.append(text)
    return out


def _gold_index(sample: Sample) -> int:
    refs = _references(sample)
    return sample.choices.index(refs[0]) if sample.choices and refs and refs[0] in sample.choices else -1


def _softmax(lls: list[float]) -> np.ndarray:
    x = np.asarray(lls, dtype=np.float64)
    if not len(x) or not np.isfinite(x).all():
        return np.full(len(x), np.nan)
    e = np.exp(x - x.max())
    return e / e.sum()


def _field(doc: dict, name: str) -> str:
    value = doc.get(name)
    return "(missing)" if value is None else str(value)


def align(runs: dict[str, HarnessRun], attributes: list[str] | None = None) -> Aligned:
    """Read every model's samples and line them up by (task, doc_id)."""
    per_model: dict[str, dict[tuple[str, int], Sample]] = {}
    tasks: list[str] = []
    errors: dict[str, str] = {}
    for mid, run in runs.items():
        try:
            per_model[mid] = {(task.name, s.doc_id): s for task in run.tasks.values()
                              for s in read_samples(task, run.where)}
        except ExperimentError as exc:
            errors[mid] = str(exc)
            continue
        tasks.extend(t.name for t in run.tasks.values() if t.samples is not None and t.name not in tasks)
    order = {t: i for i, t in enumerate(tasks)}
    keys = sorted({k for docs in per_model.values() for k in docs}, key=lambda k: (order[k[0]], k[1]))
    first = {k: next(docs[k] for docs in per_model.values() if k in docs) for k in keys}
    score_names = list(dict.fromkeys([EXACT, *(n for docs in per_model.values() for s in docs.values()
                                                for n in s.scores)]))
    generated = np.array([not s.loglikelihoods for s in (first[k] for k in keys)], bool)
    if generated.any() and F1 not in score_names:
        score_names.insert(1, F1)
    if any(s.loglikelihoods and s.choices for s in first.values()):
        score_names.append("confidence")
    attrs = {"task": [k[0] for k in keys]}
    for name in attributes or []:
        attrs[name] = [_field(first[k].doc, name) for k in keys]
    task = {"kind": "generative", "prompts": [first[k].prompt for k in keys],
            "references": [_references(first[k]) for k in keys], "attributes": attrs,
            "score_names": score_names, "keys": [list(k) for k in keys],
            "choices": [list(first[k].choices) for k in keys], "source": "lm_eval"}
    correct = correctness_metrics(per_model)
    task["correctness"] = correct
    outputs = {mid: _model_outputs(docs, keys, score_names, correct) for mid, docs in per_model.items()}
    for out in outputs.values():
        _text_scores(out, task["references"], generated)
    notices = [n for mid, docs in per_model.items() for n in _missing_notice(mid, docs, keys, tasks)]
    notices += [f"model '{mid}' has no logged samples (run lm_eval with --log_samples)"
                for mid, docs in per_model.items() if not docs]
    task["notices"] = notices
    return Aligned(task, outputs, notices, errors)


def _model_outputs(docs: dict[tuple[str, int], Sample], keys: list[tuple[str, int]], score_names: list[str],
                   correct_by_task: dict[str, str]) -> dict:
    n = len(keys)
    scores = {name: np.full(n, np.nan, np.float32) for name in score_names}
    texts, raw = [""] * n, [""] * n
    present = np.zeros(n, bool)
    choice = np.full(n, -1, np.int32)
    confidence = np.full(n, np.nan, np.float32)
    nll = np.full(n, np.nan, np.float32)
    for i, key in enumerate(keys):
        sample = docs.get(key)
        if sample is None:
            continue
        present[i] = True
        texts[i], raw[i] = sample.output, sample.raw
        for name, value in sample.scores.items():
            scores[name][i] = value
        scores[EXACT][i] = sample.scores.get(correct_by_task.get(key[0], ""), np.nan)
        if sample.choices and sample.loglikelihoods:
            probs = _softmax(sample.loglikelihoods)
            choice[i] = int(np.nanargmax(sample.loglikelihoods)) if np.isfinite(probs).all() else -1
            confidence[i] = probs[choice[i]] if choice[i] >= 0 else np.nan
            gold = _gold_index(sample)
            nll[i] = -sample.loglikelihoods[gold] if gold >= 0 else np.nan
        elif sample.loglikelihoods and not math.isnan(sample.loglikelihoods[0]):
            nll[i] = -sample.loglikelihoods[0]
    if "confidence" in scores:
        scores["confidence"] = confidence
    return {"kind": "generative", "texts": texts, "scores": scores, "nll": nll, "ntokens": None,
            "repetition": None, "kl": None, "top1": None, "kl_reference": None,
            "raw_texts": raw, "present": present, "choice": choice, "confidence": confidence}


def _text_scores(out: dict, references: list[list[str]], generated: np.ndarray) -> None:
    """The app's own text scores where the harness gave none (docs/generative.md section 4): SQuAD
    token F1 against the references and repeated bigrams, for generated answers only (a chosen
    choice is right or wrong; its words say nothing about degeneration)."""
    f1, rep = out["scores"].get(F1), np.full(len(references), np.nan, np.float32)
    for i in np.flatnonzero(generated & out["present"]):
        if f1 is not None and np.isnan(f1[i]):
            f1[i] = token_f1(out["texts"][i], references[i])
        rep[i] = repetition(out["texts"][i])
    out["repetition"] = rep


def correctness_metrics(per_model: dict[str, dict[tuple[str, int], Sample]]) -> dict[str, str]:
    """Per task, the metric that says right or wrong (flips across tasks count with it): its first
    metric whose every value is 0 or 1 (exact_match of a generate_until task, acc of a multiple
    choice one: the chosen answer is the gold one). Tasks without one have no right/wrong."""
    seen: dict[str, dict[str, bool]] = {}
    for docs in per_model.values():
        for (task, _), sample in docs.items():
            binary = seen.setdefault(task, {})
            for name, value in sample.scores.items():
                binary[name] = binary.get(name, True) and value in (0.0, 1.0)
    return {task: name for task, binary in seen.items() for name in [next((n for n, b in binary.items() if b), None)]
            if name is not None}


def _missing_notice(mid: str, docs: dict, keys: list[tuple[str, int]], tasks: list[str]) -> list[str]:
    lacking = {t: 0 for t in tasks}
    for key in keys:
        if key not in docs:
            lacking[key[0]] += 1
    parts = [f"{count} of {sum(1 for k in keys if k[0] == t)} in {t}" for t, count in lacking.items() if count]
    if not parts:
        return []
    return [f"model '{mid}' lacks documents that other models answered ({'; '.join(parts)}); its outputs there "
            f"are empty and its scores missing. Fix: run lm_eval on the same tasks without --limit."]
