"""Open an MLflow experiment as one of ours, read with MLflow's own client.

`mlflow:<tracking uri>#<experiment>` on the command line, or `experiment: {mlflow: {...}}` in a
config. MLflow is optional (requirements-mlflow.txt) and imported only here. Runs are mapped by
mapping.py. A read is MLflow's paged `search_runs` and nothing per run, so an experiment of
thousands of runs opens in seconds; checkpoints and `outputs.npz` are looked up and downloaded
(once, into the cache directory) only when precompute needs them (`resolve`). After the first
read, a background thread re-reads the runs every `poll_seconds`, so no request ever waits on the
tracking server and runs logged while the app is open appear on the next poll.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cnc.experiment.errors import ConfigError
from cnc.experiment.forest import Experiment, parse_experiment
from cnc.experiment.mlflow.mapping import RunRecord, experiment_from_runs, model_ids

PREFIX = "mlflow:"
_TERMINAL = ("FINISHED", "FAILED", "KILLED")
PAGE = 1000  # runs per search_runs call (the most a SQL store returns in one)


class MlflowSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_uri: str = Field(description="http(s)://server, sqlite:///file.db, or an mlruns folder")
    experiment: str = Field(description="experiment name (or id)")
    checkpoint: Optional[str] = Field(None, description="artifact path of each run's checkpoint (.pt file or "
                                                        "MLflow model folder); default: searched")
    outputs: str = Field("outputs.npz", description="artifact path of precomputed outputs (probs [N, C])")
    metrics: list[dict[str, Any]] = Field(default_factory=list, description="metric declarations (override)")
    poll_seconds: float = Field(5.0, gt=0, description="seconds between reads of the runs while serving")
    trust_pickled_models: bool = Field(False, description="load MLflow PyTorch models (pickle/pt2 archives "
                                                          "run code on load): only for stores you trust")


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _mlflow():
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("opening an MLflow experiment needs the optional MLflow package. "
                          "Fix: pip install -r requirements-mlflow.txt") from None
    return MlflowClient


def normalize_uri(uri: str, base_dir: Path) -> str:
    """Relative sqlite files and mlruns folders are relative to `base_dir` (config folder or cwd)."""
    scheme = urlparse(uri).scheme
    if scheme == "sqlite" and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str((base_dir / uri[len("sqlite:///"):]).resolve())
    if scheme in ("", "file") or len(scheme) == 1:  # a folder (a Windows drive letter is no scheme)
        path = Path(uri[len("file://"):] if scheme == "file" else uri).expanduser()
        return (path if path.is_absolute() else base_dir / path).resolve().as_uri()
    return uri


_ENV_LOCK = threading.Lock()
_ENV_USERS: dict[str, int] = {}  # variable -> reads in progress that need it
_ENV_SAVED: dict[str, str | None] = {}  # variable -> its value before the first of those reads


@contextmanager
def _reading_env(uri: str):
    """For the read only: no MLflow download bars, and MLflow's file store (maintenance mode),
    which refuses to open unless MLFLOW_ALLOW_FILE_STORE is set. The environment is process-wide
    and reads overlap (a poll, a first open), so the first read in sets a variable and the last one
    out restores it; the lock guards only that bookkeeping, never a (possibly slow) read."""
    wanted = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    if uri.startswith("file:"):
        wanted["MLFLOW_ALLOW_FILE_STORE"] = "true"
    with _ENV_LOCK:
        for k, v in wanted.items():
            if _ENV_USERS.get(k, 0) == 0:
                _ENV_SAVED[k] = os.environ.get(k)
                os.environ[k] = v
            _ENV_USERS[k] = _ENV_USERS.get(k, 0) + 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            for k in wanted:
                _ENV_USERS[k] -= 1
                if _ENV_USERS[k] == 0:
                    old = _ENV_SAVED.pop(k)
                    if old is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = old


def _check_reachable(uri: str, where: str) -> None:
    """Fail fast with a clear message instead of MLflow's minutes of retries."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
                resp.read(64)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _fail(where, f"cannot reach the MLflow tracking server at {uri} ({reason}). Fix: start the "
                               f"server (mlflow server ...) or correct tracking_uri.") from None
    elif scheme == "sqlite":
        path = Path(uri[len("sqlite:///"):])
        if not path.is_file():
            raise _fail(where, f"MLflow database {path} does not exist. Fix: correct the sqlite:/// path "
                               f"(relative paths are relative to the config file, or the current folder).")
    elif scheme == "file":
        path = Path(urlparse(uri).path)
        if not path.is_dir():
            raise _fail(where, f"MLflow folder {path} does not exist. Fix: point tracking_uri at the mlruns folder.")


@dataclass
class Snapshot:
    experiment: Experiment
    notices: list[str]
    fingerprint: str
    runs: dict[str, str] = field(default_factory=dict)  # model id -> run id


class MlflowSource:
    """One MLflow experiment: the latest read of its runs, refreshed in the background."""

    def __init__(self, settings: MlflowSettings, cache_dir: Path, where: str):
        self.settings, self.where = settings, where
        key = hashlib.sha256(f"{settings.tracking_uri}#{settings.experiment}".encode()).hexdigest()[:16]
        self.files = Path(cache_dir) / "mlflow" / key
        self.snapshot: Snapshot | None = None
        self.error: str | None = None
        self._read_at = 0.0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # held during a read
        self._starting = threading.Lock()  # held only to start the poll thread
        self._resolving = threading.Lock()  # held while artifacts are looked up and downloaded
        self._resolved: dict[str, str] = {}  # run id -> why its checkpoint cannot be used ("": it can)
        self._seen: dict[str, Any] = {}  # run id -> the run as last read
        self._logged: dict[str, list] = {}  # run id -> its MLflow 3 logged models, as last read

    # -- live reload
    def stamp(self) -> tuple:
        """Cheap: what the last read saw; starts a new background read when the last is stale."""
        fresh = time.monotonic() - self._read_at < self.settings.poll_seconds
        if not fresh:
            with self._starting:  # concurrent requests start one poll
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._refresh, name="cnc-mlflow-poll", daemon=True)
                    self._thread.start()
        return (self.snapshot.fingerprint if self.snapshot else None, self.error)

    def _refresh(self) -> None:
        try:
            self.read()
        except Exception as exc:  # server down mid-session: report it, keep the last good runs
            self.error = str(exc)

    def current(self) -> Snapshot:
        """The latest good read (reading now the first time); raises while the source is failing."""
        if self.snapshot is None:
            self.read()
        if self.error:
            raise ConfigError(self.error)
        return self.snapshot

    # -- reading
    def read(self) -> Snapshot:
        with self._lock:
            client_cls = _mlflow()
            uri = self.settings.tracking_uri
            _check_reachable(uri, self.where)
            with _reading_env(uri):
                client = client_cls(tracking_uri=uri)
                exp_id = self._experiment_id(client)
                runs = self._runs(client, exp_id)
                self._logged = _logged_models(client, exp_id)
            self._seen = {run.info.run_id: run for run in runs}
            looked_up = set(os.listdir(self.files)) if self.files.is_dir() else set()  # one listing, not a stat per run
            records = [self._record(run, run.info.run_id in looked_up) for run in runs]
            data, notices = experiment_from_runs(records, self.settings.metrics)
            notices += [p for p in (self._resolved.get(r.run_id) for r in records) if p]
            exp = parse_experiment(data, where=f"{self.where} (MLflow)")
            exp.warnings[:0] = notices
            running = sorted(r.info.run_id for r in runs if r.info.status not in _TERMINAL)  # may log a checkpoint
            fingerprint = hashlib.sha256(json.dumps([data, notices, running], sort_keys=True,
                                                    default=str).encode()).hexdigest()
            runs_of = {mid: run_id for run_id, mid in model_ids(records).items()}
            snapshot = Snapshot(exp, notices, fingerprint, runs_of)
            self.snapshot, self.error, self._read_at = snapshot, None, time.monotonic()
            return self.snapshot

    def _experiment_id(self, client) -> str:
        name = self.settings.experiment
        exp = client.get_experiment_by_name(name)
        if exp is None and name.isdigit():
            try:
                exp = client.get_experiment(name)
            except Exception:  # MlflowException: no such id
                exp = None
        if exp is None or exp.lifecycle_stage != "active":
            names = sorted(e.name for e in client.search_experiments())
            raise _fail(self.where, f"MLflow experiment '{name}' not found at {self.settings.tracking_uri} "
                                    f"(experiments there: {', '.join(names) or 'none'}). Fix: use one of those names.")
        return exp.experiment_id

    @staticmethod
    def _runs(client, exp_id: str) -> list:
        from mlflow.entities import ViewType

        runs, token = [], None
        while True:
            page = client.search_runs([exp_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=PAGE,
                                      order_by=["attributes.start_time ASC"], page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _record(self, run, looked_up: bool) -> RunRecord:
        info, data = run.info, run.data
        metrics = {k: v for k, v in data.metrics.items() if not k.startswith("system/")}
        checkpoint, outputs = self._local(info.run_id) if looked_up else (None, None)
        return RunRecord(run_id=info.run_id, name=info.run_name or data.tags.get("mlflow.runName", ""),
                         tags=dict(data.tags), params=dict(data.params), metrics=metrics,
                         checkpoint=checkpoint, outputs=outputs)

    # -- artifacts
    def _files(self, run_id: str) -> tuple[Path, Path, Path]:
        folder = self.files / run_id
        return folder / "checkpoint.pt", folder / "outputs.npz", folder / "resolved.json"

    def _local(self, run_id: str) -> tuple[str | None, str | None]:
        """The run's downloaded (checkpoint, outputs), when an earlier look-up found them (this
        process, or any earlier one for a finished run): local files only, no MLflow call."""
        ckpt, outs, done = self._files(run_id)
        if run_id not in self._resolved:
            if not done.exists():
                return None, None
            self._resolved[run_id] = json.loads(done.read_text()).get("problem", "")
        return (str(ckpt) if ckpt.exists() else None, str(outs) if outs.exists() else None)

    def resolve(self, snapshot: Snapshot) -> None:
        """Look up and download the checkpoint and outputs of the snapshot's runs not resolved yet
        (finished runs once for good; running ones again each time), and set them on its models.
        Precompute calls this before it reads any model: only it needs the files."""
        with self._resolving, _reading_env(self.settings.tracking_uri):
            for mid, model in snapshot.experiment.models.items():
                run = self._seen.get(snapshot.runs.get(mid, ""))
                if run is None:
                    continue
                if run.info.run_id not in self._resolved or run.info.status not in _TERMINAL:
                    problem = self._fetch(run)
                    if problem and problem not in snapshot.notices:
                        snapshot.notices.append(problem)
                        snapshot.experiment.warnings.append(problem)
                model.checkpoint, model.outputs = self._local(run.info.run_id)

    def _fetch(self, run) -> str:
        """Download one run's outputs and checkpoint (one listing of its artifact root); returns
        why its checkpoint cannot be used ("" when it can, or it has none)."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        from cnc.experiment.mlflow.artifacts import ArtifactError, RunArtifacts, fetch_checkpoint, fetch_file

        run_id = run.info.run_id
        ckpt, outs, done = self._files(run_id)
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        artifacts = RunArtifacts(get_artifact_repository(run.info.artifact_uri,
                                                         tracking_uri=self.settings.tracking_uri))
        problem = ""
        fetch_file(artifacts, self.settings.outputs, outs)
        try:
            fetch_checkpoint(artifacts, self.settings, self._logged.get(run_id, []), ckpt)
        except ArtifactError as exc:
            problem = f"run '{run.info.run_name or run_id}': {exc}"
        if run.info.status in _TERMINAL:
            done.write_text(json.dumps({"problem": problem}))
        self._resolved[run_id] = problem
        return problem


def _logged_models(client, exp_id: str) -> dict[str, list]:
    """MLflow 3 logged models (mlflow.pytorch.log_model) by source run; none on older stores."""
    out: dict[str, list] = {}
    try:
        token = None
        while True:
            page = client.search_logged_models([exp_id], max_results=100, page_token=token)
            for m in page:
                out.setdefault(m.source_run_id, []).append(m)
            token = page.token
            if not token:
                return out
    except Exception:  # stores or servers without logged-model support
        return out


_SOURCES: dict[tuple, MlflowSource] = {}
_SOURCES_LOCK = threading.Lock()


def open_source(raw: Any, where: str, base_dir: Path, cache_dir: Path) -> MlflowSource:
    """Validated settings -> the (shared) source for them; one per experiment and cache dir, so
    reloads reuse the background reads."""
    try:
        settings = MlflowSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"'mlflow.{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors())
        raise _fail(where, f"invalid mlflow settings: {problems}. Fix: see README 'Opening an MLflow "
                           f"experiment'.") from None
    settings.tracking_uri = normalize_uri(settings.tracking_uri, base_dir)
    key = (settings.model_dump_json(), str(cache_dir))
    with _SOURCES_LOCK:
        if key not in _SOURCES:
            _SOURCES[key] = MlflowSource(settings, cache_dir, where)
        return _SOURCES[key]


def parse_spec(spec: str) -> dict:
    """'mlflow:<tracking uri>#<experiment>' -> settings mapping."""
    uri, sep, name = spec[len(PREFIX):].rpartition("#")
    if not sep or not uri or not name:
        raise ConfigError(f"'{spec}': expected mlflow:<tracking uri>#<experiment name>, e.g. "
                          f"mlflow:sqlite:///mlflow.db#resnet-compress.")
    return {"tracking_uri": uri, "experiment": name}
