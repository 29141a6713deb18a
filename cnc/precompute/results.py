"""Where finished models go, whichever process summarized them (cnc.evaluation.summarize does the
work and writes nothing; the cache owner writes here)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from cnc.analysis.divergence import divergences
from cnc.precompute.checked_disk import DamagedEntry
from cnc.precompute.store import SummaryStore


@dataclass
class PrecomputeReport:
    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def write_summaries(store: SummaryStore, th: str, ch: str, result: dict) -> None:
    """Store what summarize_model returned; the `done` marker comes last (resumable). The
    outputs keep the probabilities' checksum, verified when they are read; "health" (a few
    bytes: evaluated accuracy, why the outputs are suspect) is what the app's status reads."""
    outputs = result.get("outputs")
    if "probs" in result:  # generative models have none
        outputs = {**outputs, "probs_crcs": store.put_probs(th, ch, result["probs"])}
    for kind in ("topk", "params", "activations"):
        if kind in result:
            store.put(kind, th, ch, result[kind])
    if "outputs" in result:  # a weights-only task has none
        store.put("outputs", th, ch, outputs)
        store.put("health", th, ch, {k: outputs[k] for k in ("accuracy", "suspect") if k in outputs})
    store.mark_done(th, ch)


@dataclass
class Results:
    """Where finished models go, whichever process summarized them: the cache owner's store, the
    report, the progress bar and the caller's `on_model` callback."""

    store: SummaryStore
    th: str
    report: PrecomputeReport
    bar: Any
    on_model: Callable[[int, int, str], None] | None
    total: int
    started: int = 0
    roots: dict[str, str | None] = field(default_factory=dict)  # model id -> its root's checkpoint hash
    done: list[tuple[str, str]] = field(default_factory=list)  # (model id, checkpoint hash) written
    experiment: Any = None  # names each model's root (its quantization-error reference)

    def starting(self, model_id: str) -> None:
        self.bar.set_postfix_str(model_id)
        if self.on_model is not None:
            self.on_model(self.started, self.total, model_id)
        self.started += 1

    def finished(self, model_id: str, ch: str, result: dict) -> None:
        self.store.put_edges(self.th, result["edges"])
        if "notice" in result:  # a model the task cannot run here: its Layers, and why it has no outputs
            self.store.put("params", self.th, ch, result["params"])
            self.failed(model_id, ch, result["notice"])
            return
        write_summaries(self.store, self.th, ch, result)
        self.done.append((model_id, ch))
        self.report.computed.append(model_id)
        self._divergence(model_id, ch, result.get("probs"))
        self.bar.update()

    def _divergence(self, model_id: str, ch: str, probs: Any) -> None:
        """MSE and KL of a model against its root (the usual Behaviors base), stored as soon as
        the model is, so a killed run loses at most the model in flight; a model whose root is not
        stored yet (a cluster finishes in any order) gets it in `fill_divergences`."""
        root = self.roots.get(model_id)
        if probs is None or root is None or root == ch or self.store.has_divergence(self.th, root, ch):
            return
        base = self.store.get("probs", self.th, root)  # memory-mapped; None if the root has none (yet)
        if base is not None and base.shape == probs.shape:
            try:
                self.store.put_divergence(self.th, root, ch, divergences(base, [probs])[:, 0])
            except DamagedEntry:  # the root's rows: dropped, so the next run redoes it, then this
                pass

    def fill_divergences(self, hashes: dict[str, str | None]) -> None:
        """Every model's divergence against its root that is still missing (models finished before
        their root, or by a run killed before this existed), in one sweep over the stored
        probabilities per root (the root's logs taken once per row block for all its models): the
        MSE / KL views of a selection based on it then read 8 bytes per instance and model instead
        of every probability. `hashes`: model id -> checkpoint hash, for every model of the task."""
        by_root: dict[str, list[str]] = {}
        for model_id, ch in hashes.items():
            root = self.roots.get(model_id)
            if ch is not None and root is not None and root != ch and not self.store.has_divergence(self.th, root, ch):
                by_root.setdefault(root, []).append(ch)
        for root, chs in by_root.items():
            base = self.store.get("probs", self.th, root)
            if base is None:
                continue
            found = [(ch, self.store.get("probs", self.th, ch)) for ch in chs if self.store.is_done(self.th, ch)]
            found = [(ch, p) for ch, p in found if p is not None and p.shape == base.shape]
            try:
                values = divergences(base, [p for _, p in found])
            except DamagedEntry:  # dropped where found; the next run recomputes the model, then this
                continue
            for i, (ch, _) in enumerate(found):
                self.store.put_divergence(self.th, root, ch, values[:, i])

    def failed(self, model_id: str, ch: str, msg: str) -> None:
        self.store.put_error(self.th, ch, msg)
        self.report.failed[model_id] = msg
        self.bar.write(f"[cnc] model '{model_id}' failed: {msg}", file=sys.stderr)
        self.bar.update()
