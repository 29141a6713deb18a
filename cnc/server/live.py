"""Live experiments: pick up models logged while the app runs and precompute them in the
background, one process at a time per cache directory, without blocking any request."""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from cnc.experiment.config import Config, load_config
from cnc.experiment.files import files_stamp
from cnc.experiment.lm_eval import harness_stamp
from cnc.precompute.lock import precompute_locked
from cnc.precompute.run import pending_models
from cnc.precompute.store import SummaryStore

CHECK_EVERY = 1.0  # seconds between file-change checks
log = logging.getLogger(__name__)


@dataclass
class Progress:
    running: bool = False
    done: int = 0
    total: int = 0
    current: str = ""
    errors: dict[str, str] = field(default_factory=dict)


class LiveExperiment:
    """Holds the current Config; reloads it when its files change (bad edits are reported, and
    the last good experiment is kept)."""

    def __init__(self, config: Config, store: SummaryStore, background: bool = True):
        self.current: tuple[Config, int] = (config, 0)  # one attribute: readers never see a torn pair
        self.store = store
        self.background = background
        self.reload_error: str | None = None
        self.progress = Progress()
        self.device: str | None = None  # --device, for background precompute
        self.scheduler: str | None = None  # --scheduler / --workers: background precompute on Dask too
        self.workers: int | None = None
        self._stamp = self._files_stamp()
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.warmers: list[Callable[[], None]] = []  # run in a thread after each load (`warm`)

    @property
    def config(self) -> Config:
        return self.current[0]

    @property
    def version(self) -> int:
        """Changes whenever the experiment is reloaded."""
        return self.current[1]

    def _files_stamp(self) -> tuple:
        paths = [p for p in (self.config.path, self.config.experiment_path) if p is not None]
        stamp = []
        for p in paths:
            try:
                st = os.stat(p)
                stamp.append((str(p), st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append((str(p), None, None))
        if self.config.watch is not None:  # e.g. an MLflow experiment
            stamp.append(self.config.watch())
        stamp.append(harness_stamp(self.config.experiment.models.values()))  # new lm-evaluation-harness runs
        stamp.append(files_stamp(self.config.experiment.watched))  # benchmark results, fidelity reports
        return tuple(stamp)

    def check(self, force: bool = False) -> bool:
        """Reload if the files changed; returns True when a new experiment was loaded."""
        now = time.monotonic()
        if not force and now - self._checked < CHECK_EVERY:
            return False
        self._checked = now
        stamp = self._files_stamp()
        if stamp == self._stamp and not force:
            return False
        with self._lock:
            self._stamp = stamp
            source = self.config.path or self.config.experiment_path or self.config.spec
            if source is None:
                return False
            try:
                new = load_config(source, cache_dir=self.config.cache_dir)
            except Exception as exc:  # a half-edited or broken file: keep serving the last good one
                self.reload_error = f"{exc}"
                return False
            self.current, self.reload_error = (new, self.version + 1), None
        self.start_background()
        self.warm()
        return True

    def warm(self, warmers: list[Callable[[], None]] | None = None) -> None:
        """Run the warmers (default: all) in a thread (the server only): they fill the new
        experiment's memos (map layouts, encodings) so the first page request finds them ready
        instead of paying for them."""
        warmers = list(self.warmers if warmers is None else warmers)
        if self.background and warmers:
            threading.Thread(target=self._warm, args=(warmers,), name="cnc-warm", daemon=True).start()

    @staticmethod
    def _warm(warmers: list[Callable[[], None]]) -> None:
        for fn in warmers:
            try:
                fn()
            except Exception:  # only a head start: the request computes what is missing
                log.exception("warming the views of a newly loaded experiment failed")

    def start_background(self) -> None:
        """Look for new models in a thread: scanning what is pending hashes every model's file,
        which must not hold up the request that noticed the reload."""
        if not self.background or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._run, name="cnc-precompute", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if not pending_models(self.config, self.store):
                return
            # errors so far (start-up failures included) stay listed; "running" once a model starts,
            # so a writer that finds another process holding the lock shows nothing
            self.progress = Progress(errors=self.progress.errors)

            def step(i: int, total: int, model_id: str) -> None:
                p = self.progress
                p.running, p.done, p.total, p.current = True, i, total, model_id

            # another worker/process holding the lock is on it: let it work
            report = precompute_locked(self.config, self.store, wait=False, progress=False, on_model=step,
                                       device=self.device, scheduler=self.scheduler, workers=self.workers)
            if report is not None:
                self.progress.errors.update(report.failed)
            self.progress.done = self.progress.total
        except Exception as exc:  # a task that cannot even start: report, keep serving
            self.progress.errors["(task)"] = f"{type(exc).__name__}: {exc}"
        finally:
            self.progress.running = False
