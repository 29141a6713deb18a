"""The one object views read from: the experiment, its config and the cached summaries.

Pages and callbacks get an `AppContext`; they never touch torch or the raw cache. Summaries are
memoized in memory (bounded) on top of the disk cache, so repeated views cost nothing.
"""
from __future__ import annotations

from typing import Any

from cnc.config import Config
from cnc.experiment import Experiment
from cnc.live import LiveExperiment
from cnc.memo import Memo
from cnc.precompute import config_task_hash
from cnc.store import SummaryStore


class AppContext:
    """`background=True` (the server) reloads a changed experiment and precomputes new models in
    a background thread; tests and benchmarks use the default, a fixed experiment."""

    def __init__(self, config: Config, store: SummaryStore, background: bool = False):
        self.store = store
        self.live = LiveExperiment(config, store, background=background)
        self._memo = Memo(256, keep_none=False)

    @property
    def config(self) -> Config:
        self.live.check()
        return self.live.config

    @property
    def experiment(self) -> Experiment:
        return self.config.experiment

    @property
    def version(self) -> int:
        """Changes whenever the experiment is reloaded (a key for per-experiment memos)."""
        return self.live.version

    def status_line(self) -> str:
        """One line for the header: background work and reload problems."""
        self.live.check()
        p, parts = self.live.progress, []
        if p.running:
            parts.append(f"Summarizing new models: {p.done} of {p.total} ({p.current})")
        if p.errors:
            names = ", ".join(sorted(p.errors)[:3]) + ("…" if len(p.errors) > 3 else "")
            parts.append(f"{len(p.errors)} model(s) failed to summarize ({names}); see Compare for details")
        if self.live.config.notices:
            notices = self.live.config.notices
            more = f" (+{len(notices) - 1} more on the console)" if len(notices) > 1 else ""
            parts.append(f"{len(notices)} run(s) need attention: {notices[0]}{more}")
        if self.live.reload_error:
            parts.append(f"Experiment file has an error; showing the last good version. {self.live.reload_error}")
        return " · ".join(parts)

    @property
    def title(self) -> str:
        return self.config.title

    @property
    def task_hash(self) -> str | None:
        return config_task_hash(self.config)

    def _model_hash(self, model_id: str) -> str | None:
        m = self.experiment.models.get(model_id)
        if m is None or self.task_hash is None:
            return None
        source = m.checkpoint or m.outputs
        return self.store.file_hash(source) if source else None

    def _summary(self, kind: str, model_id: str) -> Any:
        th, ch = self.task_hash, self._model_hash(model_id)
        if th is None or ch is None:
            return None
        return self._memo.get_or((kind, th, ch), lambda: self.store.get(kind, th, ch))

    def outputs(self, model_id: str) -> dict | None:
        """{"probs", "preds", "scalars"} for a model, or None when not (yet) computed."""
        return self._summary("outputs", model_id)

    def params(self, model_id: str) -> dict | None:
        return self._summary("params", model_id)

    def activations(self, model_id: str) -> dict | None:
        return self._summary("activations", model_id)

    def task_data(self) -> dict | None:
        th = self.task_hash
        return None if th is None else self._memo.get_or(("task", th), lambda: self.store.get_task(th))

    def instance(self, index: int) -> dict | None:
        th = self.task_hash
        if th is None:
            return None
        items = self._memo.get_or(("instances", th), lambda: self.store.get_instances(th))
        return items[index] if items is not None and 0 <= index < len(items) else None

    def status(self, model_id: str) -> str:
        """'ready', 'pending', 'failed: <why>', 'no data' (no checkpoint/outputs or no task)."""
        m = self.experiment.models.get(model_id)
        if m is None:
            return "unknown model"
        if self.task_hash is None or not (m.checkpoint or m.outputs):
            return "no data"
        ch = self._model_hash(model_id)
        if ch is None:
            return f"failed: file missing or unreadable: {m.checkpoint or m.outputs}"
        if self.store.is_done(self.task_hash, ch):
            return "ready"
        err = self.store.get_error(self.task_hash, ch)
        return f"failed: {err}" if err else "pending"
