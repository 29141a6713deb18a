"""The experiment as views see it: the logged metrics plus the derived ones (cnc.analysis.derived_metrics),
computed from each model's stored outputs once it is precomputed.

A model's derived values are computed once per (task, model, root) and stored in the summary
cache (a few numbers); the merged experiment is built once per (experiment version, precompute
progress) and kept, so a page build pays one dictionary lookup (the progress stamp is re-read at
most every `RECHECK_S`). Models without stored outputs (pending, failed, metrics only) simply
have no derived values.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Protocol

import numpy as np

from cnc.analysis import derived_metrics as D
from cnc.analysis.divergence import against_base
from cnc.experiment.forest import Experiment
from cnc.precompute.run import model_hash
from cnc.precompute.store import SummaryStore


class AppContext(Protocol):
    """What this module reads of cnc.server.context.AppContext (which imports this module)."""

    store: SummaryStore

    @property
    def task_hash(self) -> str | None: ...

    def task_data(self) -> dict | None: ...

RECHECK_S = 1.0
VERSION = 2  # bump when a derived value's definition changes: stored values are then recomputed


class DerivedExperiment:
    """Per AppContext: the merged experiment of the current version and progress stamp."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._merged: Experiment | None = None
        self._stamp: tuple = (None, 0.0)  # (store's done counter, read at)

    def experiment(self, ctx: AppContext, exp: Experiment, version: int) -> Experiment:
        th = ctx.task_hash
        if th is None:
            return exp
        stamp, at = self._stamp
        if time.monotonic() - at > RECHECK_S:
            stamp = ctx.store.done_count()
            self._stamp = (stamp, time.monotonic())
        key = (id(exp), version, th, stamp)
        if key == self._key and self._merged is not None:
            return self._merged
        with self._lock:
            if key != self._key or self._merged is None:
                values = model_values(ctx, exp, th)
                self._merged, self._key = merged(exp, values, (ctx.task_data() or {}).get("score_names") or []), key
            return self._merged


def model_values(ctx: AppContext, exp: Experiment, th: str) -> dict[str, dict[str, float]]:
    """Derived values per model id (only models whose outputs are stored)."""
    store, task = ctx.store, ctx.task_data() or {}
    hashes = {mid: model_hash(store, m) if m.source else None for mid, m in exp.models.items()}
    outputs: dict[str, dict | None] = {}

    def out(mid: str) -> dict | None:
        if mid not in outputs:
            ch = hashes.get(mid)
            outputs[mid] = store.get("outputs", th, ch) if ch and store.is_done(th, ch) else None
        return outputs[mid]

    values = {}
    for mid in exp.models:
        ch = hashes[mid]
        if ch is None:
            continue
        root = exp.path_to_root(mid)[0]
        key = ("derived", VERSION, th, ch, hashes.get(root))
        found = store.get_derived(key)
        if found is None:
            found = _compute(ctx, task, mid, root, out, hashes, th)
            if found is not None:
                store.put_derived(key, found)
        if found:
            values[mid] = found
    return values


def _compute(ctx: AppContext, task: dict, mid: str, root: str, out, hashes: dict, th: str) -> dict | None:
    mine = out(mid)
    if mine is None:
        return None
    root_out = out(root) if hashes.get(root) else None
    if mine.get("kind") == "generative":
        return D.generative_fidelity(mine, root_out, root if root_out is not None else None)
    labels = np.asarray(task.get("labels", []))
    if np.shape(mine.get("preds")) != labels.shape:
        return None
    kl = None
    if root_out is not None:
        pair = store_pair(ctx, th, hashes[root], hashes[mid], mine, root_out)
        kl = None if pair is None else pair[1]
    return D.classifier_fidelity(mine, root_out, labels, kl)


class _HashPairs:
    """The store's divergence pairs addressed by model hash (cnc.analysis.divergence.PairCache)."""

    def __init__(self, store: SummaryStore, th: str):
        self.store, self.th = store, th

    def get_divergence(self, base: str, model: str) -> np.ndarray | None:
        return self.store.get_divergence(self.th, base, model)

    def put_divergence(self, base: str, model: str, values: np.ndarray) -> None:
        self.store.put_divergence(self.th, base, model, values)


def store_pair(ctx: AppContext, th: str, root_ch: str, ch: str, mine: dict, root_out: dict) -> np.ndarray | None:
    """(MSE, KL) [2, N] of a model against its root: stored by precompute, else computed from the
    stored probabilities and stored (the same entry Behaviors reads)."""
    if root_ch == ch:
        return np.zeros((2, len(mine["preds"])), np.float32)
    pairs = _HashPairs(ctx.store, th)
    found = pairs.get_divergence(root_ch, ch)
    if found is not None:
        return found
    p_root = ctx.store.get_probs(th, root_ch, root_out["shape"]) if "shape" in root_out else None
    p_mine = ctx.store.get_probs(th, ch, mine["shape"]) if "shape" in mine else None
    if p_root is None or p_mine is None or p_root.shape != p_mine.shape:
        return None
    return np.stack(against_base([root_ch, ch], [p_root, p_mine], pairs))[:, 1]


def merged(exp: Experiment, values: dict[str, dict[str, float]], scores: list[str]) -> Experiment:
    """A copy of `exp` with the derived metrics (after the logged ones) and every model's values;
    a logged metric of the same name is never overwritten."""
    defs = [m for m in D.derived_metric_defs(values, scores) if m.name not in exp.metrics]
    if not defs:
        return exp
    names = {m.name for m in defs}
    models = {mid: replace(m, metrics={**m.metrics, **{k: v for k, v in values[mid].items() if k in names}})
              if mid in values else m for mid, m in exp.models.items()}
    return Experiment(metrics={**exp.metrics, **{m.name: m for m in defs}}, operations=exp.operations, models=models,
                      source=exp.source, warnings=exp.warnings, lm_eval_attributes=exp.lm_eval_attributes)
