"""Precompute on a Dask cluster: each pending model's summary is one Dask task.

Dask is imported here only, and only once a scheduler address or a worker count is given, so the
default in-process path and the web app never pay for it. The process that owns the cache
submits the tasks and writes every result itself: workers read the task code, the evaluation
data and the checkpoints, never the diskcache (one SQLite file is never shared across hosts).

Shared bin edges are fixed before the fan-out: when the task has none yet, its first model is
summarized alone and its edges go with every later task. A module that first appears in a later
model gets its edges from whichever such model finishes first; a model that binned it otherwise
meanwhile is summarized again with those edges, so every model of a task still bins alike.
"""
from __future__ import annotations

import importlib.util
import platform
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np

from cnc.evaluation.keys import task_hash
from cnc.evaluation.summarize import (
    ModelEntry,
    TaskSpec,
    evalset_fingerprint,
    model_entry,
    summarize_model,
    task_and_labels,
)
from cnc.experiment.checkpoints import readable
from cnc.experiment.config import PrecomputeSection
from cnc.experiment.errors import TaskError
from cnc.precompute.results import Results

CONTRACT = ("every worker needs the same Python environment as this process (this project and "
            "requirements.txt installed, plus the task's code) and must read every checkpoint at the same "
            "path (a shared file system) or URL (any fsspec URL its packages can open)")


CONNECT_TIMEOUT = "20s"


class ClusterError(TaskError):
    """The cluster cannot run this precompute; the message says which worker lacks what."""


@dataclass(frozen=True)
class ClusterOptions:
    scheduler: str | None = None
    workers: int = 0
    resources: dict[str, float] = field(default_factory=dict)
    retries: int = 2

    @property
    def enabled(self) -> bool:
        return bool(self.scheduler) or self.workers > 0


def options(section: PrecomputeSection, scheduler: str | None = None, workers: int | None = None) -> ClusterOptions:
    """The config's `precompute` section, with the command line / environment winning."""
    return ClusterOptions(scheduler=scheduler or section.scheduler,
                          workers=section.workers if workers is None else workers,
                          resources=dict(section.resources), retries=section.retries)


@contextmanager
def connect(opts: ClusterOptions) -> Iterator[Any]:
    """A Client of the given scheduler, or of a local cluster of `workers` processes (closed after)."""
    from dask.distributed import Client, LocalCluster

    if not opts.scheduler:
        with LocalCluster(n_workers=opts.workers, threads_per_worker=1, processes=True,
                          resources=opts.resources or None) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(opts.scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {opts.scheduler}: {exc}. Fix: start one with "
                           "`dask scheduler` and pass its address (tcp://host:8786) to --scheduler, "
                           "CNC_SCHEDULER or precompute.scheduler.") from None
    with client:
        yield client


def probe(spec: TaskSpec, sources: list[str]) -> dict:
    """Runs on every worker before any task: can it build the task and read every model source?"""
    import torch

    found: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                             "unreadable": [s for s in sources if not readable(s)]}
    try:
        _, labels = task_and_labels(spec)
        found["task_hash"] = task_hash(spec.spec_hash, evalset_fingerprint(labels))
    except Exception as exc:  # the worker cannot import or build the task
        found["error"] = f"{type(exc).__name__}: {exc}"
    return found


def check_workers(client: Any, spec: TaskSpec, th: str, sources: list[str], wait: float = 60) -> None:
    """Fail before the first task, naming each worker's problem, rather than model by model."""
    try:
        client.wait_for_workers(1, timeout=wait)
    except TimeoutError:
        raise ClusterError(f"no Dask worker joined the scheduler {client.scheduler.address} within {wait:.0f} s. "
                           f"Fix: start workers with `dask worker {client.scheduler.address}`.") from None
    problems, here = [], (platform.python_version(), _torch_version())
    for worker, found in client.run(probe, spec, sources, on_error="return").items():
        if isinstance(found, BaseException):  # the probe itself could not run there (no cnc, say)
            problems.append(f"worker {worker} could not import or run cnc: {type(found).__name__}: {found}")
            continue
        if "error" in found:
            problems.append(f"worker {worker} could not import or build the task '{spec.entry}': {found['error']}")
        elif found["task_hash"] != th:
            problems.append(f"worker {worker} reads a different evaluation set for task '{spec.entry}' "
                            "(its labels differ from this process's)")
        if found["unreadable"]:
            shown = ", ".join(found["unreadable"][:3]) + (" …" if len(found["unreadable"]) > 3 else "")
            problems.append(f"worker {worker} cannot read {len(found['unreadable'])} checkpoint(s): {shown}")
        if (found["python"], found["torch"]) != here:
            print(f"[cnc] warning: worker {worker} runs Python {found['python']} / torch {found['torch']}, this "
                  f"process {here[0]} / {here[1]}; results may differ slightly.", file=sys.stderr)
    if problems:
        raise ClusterError("; ".join(problems) + f". Fix: {CONTRACT}.")


def _torch_version() -> str:
    import torch

    return torch.__version__


def summarize_on_worker(spec: TaskSpec, entry: ModelEntry, edges: dict, reference: dict | None = None) -> dict:
    """The Dask task: a model whose own code fails comes back as {"error"} (recorded, not retried);
    only a dead worker makes Dask run it again. Several GPUs on one worker host are shared out by
    worker name (a local cluster names its workers 0..N-1)."""
    try:
        return summarize_model(_on_this_worker(spec), entry, edges, reference)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _on_this_worker(spec: TaskSpec) -> TaskSpec:
    import torch

    if spec.device not in ("auto", "cuda") or torch.cuda.device_count() < 2:
        return spec
    from dask.distributed import get_worker

    name = get_worker().name
    return replace(spec, device=f"cuda:{name % torch.cuda.device_count()}") if isinstance(name, int) else spec


def _outcome(future: Any) -> tuple[dict | None, str | None]:
    try:
        result = future.result()
    except Exception as exc:  # KilledWorker after Dask's retries, or a lost scheduler
        return None, f"{type(exc).__name__}: {exc} (its Dask worker died or was lost while summarizing it)"
    return (None, result["error"]) if "error" in result else (result, None)


def _conflicts(edges: dict, new: dict) -> bool:
    """Did this model create bins for a module that another model already set differently?"""
    return any(name in edges[kind] and not np.array_equal(edges[kind][name], e)
               for kind in ("params", "activations") for name, e in new.get(kind, {}).items())


def run_on_cluster(opts: ClusterOptions, spec: TaskSpec, results: Results, todo: list, edges: dict,
                   refs: Any = None) -> None:
    """Summarize `todo` [(model, checkpoint hash)] as Dask tasks; write each result as it arrives.
    Generative models (`refs`: cnc.precompute.run.References) go in two waves, roots first, so each
    later model ships with its root's stored top-k."""
    from dask.distributed import as_completed

    with connect(opts) as client:
        served = opts.scheduler or importlib.util.find_spec("bokeh") is not None  # a local dashboard needs bokeh
        results.bar.write(f"[cnc] precompute on Dask cluster {client.scheduler.address}; dashboard: "
                          f"{client.dashboard_link}{'' if served else ' (pip install bokeh to serve it)'}",
                          file=sys.stderr)
        check_workers(client, spec, results.th, [m.checkpoint or m.outputs for m, _ in todo])

        def submit(m: Any) -> Any:
            entry = model_entry(m, refs.root(m.id) if refs else None, results.experiment)
            return client.submit(summarize_on_worker, spec, entry, edges, refs.topk(entry) if refs else None,
                                 pure=False, retries=opts.retries, resources=opts.resources or None)

        def finish(m: Any, ch: str, future: Any) -> bool:
            """Record one finished task; False when it must run again with the current edges."""
            nonlocal edges
            result, error = _outcome(future)
            future.release()
            if error is None and _conflicts(edges, result["edges"]):
                return False
            results.starting(m.id)
            if error is not None:
                results.failed(m.id, ch, error)
            else:
                edges = {kind: {**result["edges"].get(kind, {}), **edges[kind]} for kind in edges}
                results.finished(m.id, ch, {**result, "edges": edges})
            return True

        waves = [list(todo)] if refs is None else [[(m, ch) for m, ch in todo if m.base is None],
                                                   [(m, ch) for m, ch in todo if m.base is not None]]
        for pending in waves:
            while not edges["params"] and any(m.checkpoint for m, _ in pending):  # fix the bins first
                m, ch = next((m, ch) for m, ch in pending if m.checkpoint)
                pending.remove((m, ch))
                while not finish(m, ch, submit(m)):
                    pass
            futures = {submit(m): (m, ch) for m, ch in pending}
            running = as_completed(futures)
            for future in running:
                m, ch = futures.pop(future)
                if not finish(m, ch, future):
                    again = submit(m)
                    futures[again] = (m, ch)
                    running.add(again)
