"""Evaluate a generative model (docs/generative.md): generate, score, teacher-force, compare tokens.

One model, on the task's device, under torch.inference_mode(), batch by batch:
1. greedy generation through the task's `generate`, each output cut at the first stop string;
2. a teacher-forced pass over prompt + first reference (`reference_logits`; a task with
   `generate_and_reference` does both in one call and can reuse the prompt's work): the
   reference's negative log-likelihood, each reference token's log-probability (float32, for
   llama.cpp's Δp at view time) and, against the root of the model's tree, per-token KL on
   the reference model's top-k + tail bins and top-1 agreement (cnc.analysis.token_divergence).
   A root keeps its own top-k (store kind "topk"); nothing vocabulary-sized leaves the device
   (cnc.evaluation.token_logprobs);
3. scores against the references (cnc.analysis.text_scores) and the repetition signal.
Activation summaries come from the same teacher-forced pass, on the fixed sample of prompts only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from cnc.analysis.text_scores import REPETITION_N, repetition_all, resolve_scorers, score_all
from cnc.analysis.token_divergence import TOPK, coarse_kl, unique_top
from cnc.evaluation import evaldata
from cnc.evaluation.token_logprobs import token_logprobs
from cnc.experiment.errors import TaskError

FORMAT = 1  # bump when a generative stored format changes: old entries are then not found
DEFAULT_GENERATION = {"max_new_tokens": 32, "stop": []}


@dataclass(frozen=True)
class TextSet:
    """A generative task's evaluation set and how its models generate (built once per process)."""

    prompts: list[str]
    references: list[list[str]]
    max_new_tokens: int
    stop: tuple[str, ...]
    scorers: dict[str, Callable] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def fingerprint(self) -> str:
        extra = {"max_new_tokens": self.max_new_tokens, "stop": list(self.stop), "format": FORMAT, "k": TOPK,
                 "repetition_n": REPETITION_N, "scores": sorted(self.scorers)}
        return evaldata.text_fingerprint(self.prompts, self.references, extra)

    def task_data(self, attributes: dict[str, list[str]], sample_index: np.ndarray) -> dict:
        """The task-level dict the app reads (store kind "task")."""
        return {"kind": "generative", "prompts": list(self.prompts), "references": [list(r) for r in self.references],
                "attributes": attributes, "score_names": list(self.scorers), "sample_index": sample_index,
                "generation": {"max_new_tokens": self.max_new_tokens, "stop": list(self.stop)}}


def settings(task: Any, configured: Mapping[str, Any] | None) -> dict:
    """The task's `generation` defaults, overridden key by key by the config's task.generation."""
    own = getattr(task, "generation", None) or {}
    if not isinstance(own, Mapping) or set(own) - set(DEFAULT_GENERATION):
        raise TaskError(f"task.generation must be a dict with keys {sorted(DEFAULT_GENERATION)}; got {own!r}")
    found = {**DEFAULT_GENERATION, **own, **{k: v for k, v in (configured or {}).items() if v is not None}}
    if not isinstance(found["max_new_tokens"], int) or found["max_new_tokens"] < 1:
        raise TaskError(f"generation max_new_tokens must be a positive integer; got {found['max_new_tokens']!r}")
    if isinstance(found["stop"], str) or not all(isinstance(s, str) and s for s in found["stop"]):
        raise TaskError(f"generation stop must be a list of non-empty strings; got {found['stop']!r}")
    return found


def text_set(task: Any, loading: evaldata.Loading, configured: Mapping[str, Any] | None) -> TextSet:
    prompts, references = evaldata.eval_texts(task, loading)
    if not prompts:
        raise TaskError("the evaluation set is empty")
    s = settings(task, configured)
    try:
        scorers = resolve_scorers(getattr(task, "scorers", None))
    except ValueError as exc:
        raise TaskError(f"task scorers: {exc}") from None
    return TextSet(prompts, references, s["max_new_tokens"], tuple(s["stop"]), scorers)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text up to (without) the earliest stop string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


def _texts(got: Any, n: int, stop: Sequence[str]) -> list[str]:
    if not isinstance(got, (list, tuple)) or len(got) != n or not all(isinstance(t, str) for t in got):
        raise TaskError(f"task.generate must return a list of {n} strings for {n} prompts")
    return [cut_at_stop(t, stop) for t in got]


def _first_references(data: TextSet, rows: Sequence[int]) -> list[str]:
    return [data.references[i][0] if data.references[i] else "" for i in rows]


def model_batches(task: Any, model: torch.nn.Module, data: TextSet, batch_size: int):
    """(start, texts, (logits, targets, mask)) per batch of prompts: one call of the task's optional
    `generate_and_reference` (which can share the prompt's work), else `generate` then `reference_logits`."""
    both = getattr(task, "generate_and_reference", None)
    for s in range(0, len(data), batch_size):
        prompts = data.prompts[s:s + batch_size]
        refs = _first_references(data, range(s, s + len(prompts)))
        if both is not None:
            got = both(model, prompts, refs, data.max_new_tokens)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise TaskError("task.generate_and_reference must return (texts, (logits, targets, mask))")
            texts, forced = got
        else:
            texts = task.generate(model, prompts, data.max_new_tokens)
            forced = task.reference_logits(model, prompts, refs)
        yield s, _texts(texts, len(prompts), data.stop), _checked(forced, len(prompts))


def _checked(got: Any, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise TaskError("task.reference_logits must return (logits [B,T,V], targets [B,T], mask [B,T])")
    logits, targets, mask = got
    if logits.ndim != 3 or logits.shape[0] != b or targets.shape != logits.shape[:2] or mask.shape != targets.shape:
        raise TaskError(f"task.reference_logits returned logits {tuple(logits.shape)}, targets {tuple(targets.shape)}, "
                        f"mask {tuple(mask.shape)}; expected [{b}, T, V], [{b}, T], [{b}, T]")
    return logits, targets.long(), mask.bool()


class _Divergence:
    """Walks the reference model's stored top-k alongside this model's tokens; gives up (KL None)
    when this model's reference tokens differ from the reference model's (another tokenizer)."""

    def __init__(self, reference: dict | None):
        self.ref, self.pos, self.kl, self.top1 = reference, 0, [], []

    def next_ids(self, targets: torch.Tensor) -> torch.Tensor | None:
        """The reference's top-k ids [t, k] for the next t reference tokens `targets` (None: no reference)."""
        end = self.pos + targets.shape[0]
        if self.ref is not None and (end > len(self.ref["targets"]) or not np.array_equal(
                self.ref["targets"][self.pos:end], targets.cpu().numpy())):
            self.ref = None
        if self.ref is None:
            return None
        return torch.as_tensor(self.ref["ids"][self.pos:end], device=targets.device, dtype=torch.long)

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        """This model's `token_logprobs` at the ids `next_ids` gave."""
        end = self.pos + stats["ref_tail"].shape[0]
        self.kl.append(coarse_kl(self.ref["values"][self.pos:end], self.ref["tail"][self.pos:end],
                                 stats["ref_logprob"].double().cpu().numpy(), stats["ref_tail"].double().cpu().numpy()))
        self.top1.append(stats["ref_is_top"].cpu().numpy() & unique_top(self.ref["values"][self.pos:end]))
        self.pos = end

    def result(self, total: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.ref is None or self.pos != total or total != len(self.ref["targets"]):
            return None, None
        cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
        return cat(self.kl, np.float16), cat(self.top1, bool)


class TeacherForced:
    """NLL per instance, per-token KL / top-1 against `reference` (a stored top-k) and, for a root
    (`keep_topk`), its own top-k, gathered batch by batch."""

    def __init__(self, n: int, reference: dict | None, keep_topk: bool):
        self.nll, self.ntokens = np.zeros(n, np.float32), np.zeros(n, np.int32)
        self.targets: list[np.ndarray] = []
        self.target_logprob: list[np.ndarray] = []
        self.div = _Divergence(reference)
        self.own: list[dict[str, np.ndarray]] | None = [] if keep_topk else None

    def add(self, s: int, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> None:
        b, width = mask.shape
        where = mask.reshape(-1).nonzero(as_tuple=True)[0]  # row-major: instance by instance
        flat_targets = targets.reshape(-1)[where]
        ids = self.div.next_ids(flat_targets)
        stats = token_logprobs(logits.reshape(b * width, -1), where, flat_targets, ids,
                               TOPK if self.own is not None else 0)
        self.nll[s:s + b] = torch.zeros(b, dtype=torch.float64, device=where.device).index_add_(
            0, where // max(width, 1), -stats["target"].double()).cpu().numpy()
        self.ntokens[s:s + b] = mask.sum(1).cpu().numpy()
        self.targets.append(flat_targets.int().cpu().numpy())
        self.target_logprob.append(stats["target"].float().cpu().numpy())
        if ids is not None:
            self.div.add(stats)
        if self.own is not None:
            self.own.append({"values": stats["values"].float().cpu().numpy(), "ids": stats["ids"].int().cpu().numpy(),
                             "tail": stats["tail"].float().cpu().numpy()})

    def result(self) -> dict:
        kl, top1 = self.div.result(int(self.ntokens.sum()))
        target_logprob = np.concatenate(self.target_logprob) if self.target_logprob else np.zeros(0, np.float32)
        out = {"nll": self.nll, "ntokens": self.ntokens, "kl": kl, "top1": top1,
               "target_logprob": target_logprob.astype(np.float32)}
        if self.own is not None:
            k = self.own[0]["ids"].shape[1] if self.own else TOPK
            empty = {"values": np.zeros((0, k), np.float32), "ids": np.zeros((0, k), np.int32),
                     "tail": np.zeros(0, np.float32)}
            out["topk"] = {"k": k, **{name: np.concatenate([o[name] for o in self.own]) if self.own else value
                                      for name, value in empty.items()},
                           "targets": np.concatenate(self.targets) if self.targets else np.zeros(0, np.int32),
                           "ntokens": self.ntokens.copy()}
        return out


def evaluate(task: Any, model: torch.nn.Module, data: TextSet, batch_size: int, device: torch.device,
             model_id: str, root_id: str | None, reference: dict | None, sample_index: np.ndarray,
             hooks: Callable[[], Any]) -> tuple[dict, dict | None]:
    """(outputs dict, own top-k or None) of one model. A root (`model_id == root_id`) is its own
    reference: KL zeros, top-1 True wherever its top token is unique; without a reference (root
    unknown or not computed) KL is None.
    `hooks()` is entered around a teacher-forced pass over the sampled rows only (activations)."""
    is_root = root_id is not None and model_id == root_id
    model = model.to(device).eval()
    texts: list[str] = []
    forced = TeacherForced(len(data), None if is_root else reference, is_root)
    with torch.inference_mode():
        for s, batch_texts, (logits, targets, mask) in model_batches(task, model, data, batch_size):
            texts.extend(batch_texts)
            forced.add(s, logits, targets, mask)
            del logits
            rows = sample_index[(sample_index >= s) & (sample_index < s + len(batch_texts))]
            if rows.size:
                with hooks():
                    task.reference_logits(model, [data.prompts[i] for i in rows], _first_references(data, rows))
    tf = forced.result()
    kl, top1, against = tf["kl"], tf["top1"], None
    if is_root:
        total = int(tf["ntokens"].sum())
        kl, top1, against = np.zeros(total, np.float16), unique_top(tf["topk"]["values"]), model_id
    elif kl is not None:
        against = root_id
    outputs = {"kind": "generative", "texts": texts, "scores": score_all(texts, data.references, data.scorers),
               "nll": tf["nll"], "ntokens": tf["ntokens"], "repetition": repetition_all(texts),
               "kl": kl, "top1": top1, "kl_reference": against, "target_logprob": tf["target_logprob"]}
    return outputs, tf.get("topk")


def complete_outputs(partial: Mapping[str, Any], references: Sequence[Sequence[str]],
                     scorers: Mapping[str, Callable] | None = None) -> dict:
    """An outputs dict from generated texts made elsewhere (outputs-only models): the built-in
    scores (and `scorers`) and repetition computed where `partial` lacks them; KL None."""
    texts = partial.get("texts")
    n = len(references)
    if not isinstance(texts, (list, tuple)) or len(texts) != n or not all(isinstance(t, str) for t in texts):
        raise TaskError(f"outputs need 'texts': a list of {n} strings (one per instance)")
    scores = {k: np.asarray(v, np.float32) for k, v in (partial.get("scores") or {}).items()}
    missing = {k: f for k, f in (scorers or resolve_scorers(None)).items() if k not in scores}
    scores.update(score_all(list(texts), references, missing))
    per = {}
    for key, dtype in (("nll", np.float32), ("ntokens", np.int32), ("repetition", np.float32)):
        value = partial.get(key)
        per[key] = None if value is None else np.asarray(value, dtype)
        if per[key] is not None and per[key].shape != (n,):
            raise TaskError(f"outputs '{key}' has shape {per[key].shape}; expected ({n},)")
    if per["repetition"] is None:
        per["repetition"] = repetition_all(texts)
    for name, values in scores.items():
        if values.shape != (n,):
            raise TaskError(f"outputs score '{name}' has shape {values.shape}; expected ({n},)")
    return {"kind": "generative", "texts": list(texts), "scores": scores, **per,
            "kl": None, "top1": None, "kl_reference": None}


def outputs_file(path: str | Path, data: TextSet) -> dict:
    """Read an outputs-only generative model: a JSON file {"texts": [...], optional "nll",
    "ntokens", "scores": {name: [...]}} (docs/generative.md section 4)."""
    try:
        with open(path, encoding="utf-8") as fh:
            partial = json.load(fh)
    except (OSError, ValueError) as exc:
        raise TaskError(f"{path}: cannot read generated outputs ({exc}); expected a JSON file with 'texts'") from None
    if not isinstance(partial, dict):
        raise TaskError(f"{path}: expected a JSON object with 'texts' (a list of {len(data)} strings)")
    try:
        return complete_outputs(partial, data.references, data.scorers)
    except TaskError as exc:
        raise TaskError(f"{path}: {exc}") from None
