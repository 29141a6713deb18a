"""Where finished models go, whichever process summarized them (cnc.evaluation.summarize does the
work and writes nothing; the cache owner writes here)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from cnc.analysis.divergence import divergences
from cnc.precompute.store import SummaryStore


@dataclass
class PrecomputeReport:
    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def write_summaries(store: SummaryStore, th: str, ch: str, result: dict) -> None:
    """Store what summarize_model returned; the `done` marker comes last (resumable)."""
    if "probs" in result:  # generative models have none
        store.put_probs(th, ch, result["probs"])
    for kind in ("topk", "params", "activations"):
        if kind in result:
            store.put(kind, th, ch, result[kind])
    if "outputs" in result:  # a weights-only task has none
        store.put("outputs", th, ch, result["outputs"])
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
        write_summaries(self.store, self.th, ch, result)
        self.done.append((model_id, ch))
        self.report.computed.append(model_id)
        self.bar.update()

    def store_divergences(self) -> None:
        """MSE and KL of every model finished in this run against its root (the usual Behaviors
        base), in one sweep over the stored probabilities per root (the root's logs taken once per
        row block for all its models): the MSE / KL views of a selection based on it then read
        8 bytes per instance and model instead of every probability."""
        by_root: dict[str, list[str]] = {}
        for model_id, ch in self.done:
            root = self.roots.get(model_id)
            if root is not None and root != ch:
                by_root.setdefault(root, []).append(ch)
        for root, chs in by_root.items():
            base = self.store.get("probs", self.th, root)  # memory-mapped; None if the root has none
            if base is None:
                continue
            found = [(ch, self.store.get("probs", self.th, ch)) for ch in chs]
            found = [(ch, p) for ch, p in found if p is not None and p.shape == base.shape]
            values = divergences(base, [p for _, p in found])
            for i, (ch, _) in enumerate(found):
                self.store.put_divergence(self.th, root, ch, values[:, i])

    def failed(self, model_id: str, ch: str, msg: str) -> None:
        self.store.put_error(self.th, ch, msg)
        self.report.failed[model_id] = msg
        self.bar.write(f"[cnc] model '{model_id}' failed: {msg}", file=sys.stderr)
        self.bar.update()
