"""The one object views read from: the experiment, its config and the cached summaries.

Pages and callbacks get an `AppContext`; they never touch torch or the raw cache. Summaries are
memoized in memory (bounded) on top of the disk cache, so repeated views cost nothing.

A live experiment can be reloaded at any moment. The web app `pin`s the current experiment at the
start of each request, so everything one request reads (layout or callback) comes from one
experiment; outside a request (tests, benchmarks) every read sees the latest one.
"""
from __future__ import annotations

import threading
import time
from contextvars import ContextVar
from typing import Any, Callable

import numpy as np

from cnc.analysis.output_checks import accuracy_offset, accuracy_problem
from cnc.analysis.token_probability import outdated_outputs
from cnc.evaluation.summarize import TaskSpec, task_and_labels
from cnc.experiment.config import Config
from cnc.experiment.forest import Experiment
from cnc.precompute.run import config_task_hash, model_hash
from cnc.precompute.store import SummaryStore
from cnc.server import device
from cnc.server.derived import DerivedExperiment
from cnc.server.live import CHECK_EVERY, LiveExperiment
from cnc.server.memo import Memo

_PINNED: ContextVar[tuple[LiveExperiment, Config, int] | None] = ContextVar("cnc_pinned", default=None)
_WARMING = threading.local()  # `.active`: this thread runs a load-time warm-up
PROBLEMS_EVERY = 5.0  # seconds the header's list of failed / suspect models is reused (a status per model)
WARM_WAIT_S = 5.0  # the longest a request waits for a running warm-up before doing the work itself


def _names(ids: list[str], shown: int = 3) -> str:
    return ", ".join(ids[:shown]) + ("…" if len(ids) > shown else "")


def instance_count(task: dict) -> int:
    """Instances of a stored task dict (classifier labels or generative prompts)."""
    if task.get("kind") == "weights":  # a weights-only task evaluates nothing
        return 0
    return len(task["prompts"]) if task.get("kind") == "generative" else len(task["labels"])


class AppContext:
    """`background=True` (the server) reloads a changed experiment and precomputes new models in
    a background thread; tests and benchmarks use the default, a fixed experiment."""

    def __init__(self, config: Config, store: SummaryStore, background: bool = False):
        self.store = store
        self.live = LiveExperiment(config, store, background=background)
        self._memo = Memo(256, keep_none=False)
        self._instances = Memo(512, keep_none=False)
        self._render_lock = threading.Lock()  # user task code need not be thread-safe
        self._taskref: tuple = (None, 0.0, None)  # (config, checked at, task hash)
        self._problems: tuple = (None, 0.0, {})  # (version and task hash, checked at, model_problems())
        self._warm_fns = 0  # warm-ups registered (`warm_with`): each runs once per loaded version
        self._warm_lock = threading.Lock()
        self._warmed: dict[int, tuple[threading.Event, list[int]]] = {}  # version -> (done, [left])
        self._derived = DerivedExperiment()

    def pin(self) -> None:
        """Read one experiment until `unpin` (per thread / context: one request)."""
        self.live.check()
        _PINNED.set((self.live, *self.live.current))

    def unpin(self) -> None:
        _PINNED.set(None)

    def warm_with(self, fn: Callable[["AppContext"], object]) -> None:
        """Run `fn(self)`, pinned to the experiment just loaded, in a background thread at start
        and after every reload (servers only: `background=True`). A request that needs what it
        builds waits for it (`await_warm`) instead of doing the same work alongside it."""
        def run() -> None:
            self.pin()
            done, left = self._warm_state(self.version)
            _WARMING.active = True
            try:
                fn(self)
            finally:
                _WARMING.active = False
                self.unpin()
                with self._warm_lock:
                    left[0] -= 1
                    if left[0] <= 0:
                        done.set()

        with self._warm_lock:
            self._warm_fns += 1
        self.live.warmers.append(run)
        self.live.warm([run])

    def _warm_state(self, version: int) -> tuple[threading.Event, list[int]]:
        """(done, [warm-ups left]) of a loaded version. A newer version releases the older ones'
        waiters (their warm-up may have pinned the newer experiment instead) and replaces them."""
        with self._warm_lock:
            if version not in self._warmed:
                self._warmed[version] = (threading.Event(), [self._warm_fns])
                for old in [v for v in self._warmed if v < version]:
                    self._warmed.pop(old)[0].set()
            return self._warmed[version]

    def await_warm(self, timeout: float = WARM_WAIT_S) -> bool:
        """Wait (at most `timeout` s) until the load-time warm-ups of the current experiment have
        run, so that the first page request after a load reads their memos instead of building
        the same ones at the same time (two CPU-bound threads: both slower). Returns at once when
        nothing warms (no background server, none registered) or in a warm-up itself. True when
        they are done."""
        if not self.live.background or not self._warm_fns or getattr(_WARMING, "active", False):
            return True
        return self._warm_state(self.version)[0].wait(timeout)

    def _current(self) -> tuple[Config, int]:
        pinned = _PINNED.get()
        if pinned is not None and pinned[0] is self.live:
            return pinned[1], pinned[2]
        self.live.check()
        return self.live.current

    @property
    def config(self) -> Config:
        return self._current()[0]

    @property
    def experiment(self) -> Experiment:
        """The experiment with the derived metrics of precomputed models (cnc.server.derived), its
        benchmark metrics on the request's device (cnc/server/device.py)."""
        config, version = self._current()
        return device.seen_from(self._derived.experiment(self, config.experiment, version))

    @property
    def version(self) -> int:
        """Changes whenever the experiment is reloaded (a key for per-experiment memos)."""
        return self._current()[1]

    def status_line(self) -> str:
        """One line for the header: background work and reload problems."""
        self.live.check()
        p, parts = self.live.progress, []
        if p.running:
            parts.append(f"Summarizing new models: {p.done} of {p.total} ({p.current})")
        problems = self.model_problems()
        failed = sorted(set(p.errors) | {m for m, st in problems.items() if st.startswith("failed")})
        if failed:
            parts.append(f"{len(failed)} model(s) failed to summarize ({_names(failed)}); see Compare for details")
        suspect = sorted(m for m, st in problems.items() if st.startswith("suspect"))
        if suspect:
            parts.append(f"{len(suspect)} model(s) have suspect outputs ({_names(suspect)}); see the Overview's notices")
        parts.extend(self.cache_notices())
        if self.live.config.notices:
            notices = self.live.config.notices
            more = f" (+{len(notices) - 1} more on the console)" if len(notices) > 1 else ""
            parts.append(f"{len(notices)} run(s) need attention: {notices[0]}{more}")
        harness = (self.task_data() or {}).get("notices") or []
        if harness:  # lm-evaluation-harness runs that do not cover the same documents
            parts.append(" ".join(harness))
        if self.live.reload_error:
            parts.append(f"Experiment file has an error; showing the last good version. {self.live.reload_error}")
        return " · ".join(parts)

    @property
    def title(self) -> str:
        return self.config.title

    @property
    def task_hash(self) -> str | None:
        """The evaluation set last precomputed for this config (re-read every few seconds, so a
        precompute in another process that found a changed dataset is picked up)."""
        config = self.config
        known, at, th = self._taskref
        if known is not config or th is None or time.monotonic() - at > CHECK_EVERY:
            th = config_task_hash(config, self.store)
            self._taskref = (config, time.monotonic(), th)
        return th

    def _model_hash(self, model_id: str) -> str | None:
        m = self.config.experiment.models.get(model_id)
        if m is None or self.task_hash is None:
            return None
        return model_hash(self.store, m)

    def _summary(self, kind: str, model_id: str) -> Any:
        th, ch = self.task_hash, self._model_hash(model_id)
        if th is None or ch is None:
            return None
        found = self._memo.get_or((kind, th, ch), lambda: self.store.get(kind, th, ch))
        if kind == "outputs" and outdated_outputs(found):  # being redone by precompute: look again when it stores
            found = self._memo.get_or((kind, th, ch, self.store.done_count()), lambda: self.store.get(kind, th, ch))
        return found

    def outputs(self, model_id: str) -> dict | None:
        """{"preds", "p_true", "p_pred", "scalars", "probs"} for a model, or None when not (yet)
        computed. `probs` is a float16 memory map: reading a row touches only that row. For a
        generative task, the stored dict of docs/generative.md ({"kind": "generative", "texts", ...})."""
        small = self._summary("outputs", model_id)
        if small is None or small.get("kind") == "generative":  # generated texts and scores, no probs
            return small
        probs = self.store.get_probs(self.task_hash, self._model_hash(model_id), small["shape"], small.get("probs_crcs"))
        return None if probs is None else {**small, "probs": probs}

    def get_divergence(self, base_id: str, model_id: str) -> np.ndarray | None:
        """Stored MSE and KL (float32 [2, N]) of a model against a base (cnc.analysis.divergence)."""
        th, base_ch, ch = self.task_hash, self._model_hash(base_id), self._model_hash(model_id)
        return None if th is None or base_ch is None or ch is None else self.store.get_divergence(th, base_ch, ch)

    def put_divergence(self, base_id: str, model_id: str, values: np.ndarray) -> None:
        th, base_ch, ch = self.task_hash, self._model_hash(base_id), self._model_hash(model_id)
        if th is not None and base_ch is not None and ch is not None:
            self.store.put_divergence(th, base_ch, ch, values)

    def params(self, model_id: str) -> dict | None:
        return self._summary("params", model_id)

    def activations(self, model_id: str) -> dict | None:
        return self._summary("activations", model_id)

    def task_data(self) -> dict | None:
        th = self.task_hash
        return None if th is None else self._memo.get_or(("task", th), lambda: self.store.get_task(th))

    def instance(self, index: int) -> dict | None:
        """One instance rendered by the task when a user opens it (memoized per instance); other
        instances are never loaded. {"kind": "missing", "why": ...} when the task cannot render."""
        th, task = self.task_hash, self.task_data()
        if th is None or task is None or not 0 <= index < instance_count(task):
            return None
        if task.get("source") == "lm_eval":  # no task object: the harness logged the prompt
            return {"kind": "text", "text": task["prompts"][index]}
        return self._instances.get_or((th, index), lambda: self._render(index))

    def _render(self, index: int) -> dict:
        spec = TaskSpec.from_config(self.config)
        try:
            with self._render_lock:
                shown = task_and_labels(spec)[0].render_instance(index)
        except Exception as exc:  # user code: report in the panel, keep serving
            return {"kind": "missing", "why": f"The task could not render this instance: {type(exc).__name__}: {exc}"}
        if not isinstance(shown, dict) or shown.get("kind") not in ("image", "text"):
            return {"kind": "missing", "why": "The task's render_instance returned no {'kind': 'image'|'text'} dict."}
        return shown

    def cache_notices(self) -> list[str]:
        """What the cache lost: a damaged database moved aside at start, summaries found damaged
        (their models are pending again; a server precomputes them in the background)."""
        notes = []
        if self.store.moved_aside is not None:
            notes.append(f"The cache database was damaged and moved aside ({self.store.moved_aside.moved_to}); "
                         "summaries are being recomputed.")
        damaged = len(self.store.damaged_models())
        if damaged:
            self.live.start_background()  # no-op when read-only or already running
            when = "is being" if self.live.background else "will be"
            notes.append(f"{damaged} {'summary was' if damaged == 1 else 'summaries were'} damaged and {when} "
                         f"recomputed{'' if self.live.background else ' by the next precompute'}.")
        return notes

    def model_problems(self, ids: list[str] | None = None) -> dict[str, str]:
        """Model id -> status, for models that failed or whose outputs are suspect (all models
        with data by default; re-read every PROBLEMS_EVERY seconds: the header polls it)."""
        if ids is None:
            key = (self.version, self.task_hash)
            known, at, found = self._problems
            if known != key or time.monotonic() - at > PROBLEMS_EVERY:
                found = self.model_problems([m.id for m in self.config.experiment.models.values() if m.source])
                self._problems = (key, time.monotonic(), found)
            return found
        statuses = {m: self.status(m) for m in ids}
        return {m: st for m, st in statuses.items() if st.startswith(("failed", "suspect"))}

    def model_notices(self, ids: list[str] | None = None) -> list[str]:
        """One line per failed or suspect model, by name, for the Overview and Compare."""
        models = self.config.experiment.models
        return [f"{models[m].label} ({m}) {'is suspect' if st.startswith('suspect') else 'failed to summarize'}: "
                f"{st.split(': ', 1)[1]}" for m, st in self.model_problems(ids).items() if m in models]

    def status(self, model_id: str) -> str:
        """'ready', 'pending', 'failed: <why>', 'suspect: <why>' (outputs that cannot be right),
        'no data' (no checkpoint/outputs or no task)."""
        m = self.config.experiment.models.get(model_id)
        if m is None:
            return "unknown model"
        if self.task_hash is None or not m.source:
            return "no data"
        ch = self._model_hash(model_id)
        if ch is None:
            return f"failed: file missing or unreadable: {m.source}"
        if self.store.is_done(self.task_hash, ch):
            why = self._memo.get_or(("suspect", self.version, self.task_hash, ch), lambda: self._suspect(model_id))
            return f"suspect: {why}" if why else "ready"
        err = self.store.get_error(self.task_hash, ch)
        return f"failed: {err}" if err else "pending"

    def _suspect(self, model_id: str) -> str:
        """Why a model's stored outputs cannot be right ("" when they can): its "health" entry, a
        few bytes, against its file's metrics and its root's (reading every model's outputs for
        the header would cost megabytes per model)."""
        health = self._health(model_id)
        if health.get("suspect"):
            return str(health["suspect"])
        root = self.config.experiment.path_to_root(model_id)[0]
        if root == model_id:
            return ""
        return accuracy_problem(self._accuracy(model_id, health), self._accuracy(root, self._health(root))) or ""

    def _health(self, model_id: str) -> dict:
        th, ch = self.task_hash, self._model_hash(model_id)
        found = None if th is None or ch is None else self.store.get("health", th, ch)
        return found if isinstance(found, dict) else {}

    def _accuracy(self, model_id: str, health: dict) -> tuple[str, float, float] | None:
        return accuracy_offset(health.get("accuracy"), self.config.experiment.models[model_id].metrics)
