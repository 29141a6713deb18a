"""Log models from a training script into an experiment directory the app can open.

    from cnc import Tracker
    t = Tracker("runs/resnet-compress", task="mypkg.task:MyTask")
    t.metric("Latency", unit="ms", higher_is_better=False)
    t.operation("magnitude prune", ["amount"])
    t.log_model("m50", base="base", operation=("magnitude prune", {"amount": 0.5}),
                metrics={"Latency": 3.1}, model=pruned_module)

Every write holds a file lock and replaces files atomically, so several training processes can
log into one directory at once and a crash never leaves a half-written experiment. The run file is
sealed with a checksum (cnc.experiment.run_file): a Tracker refuses to write over a file cut short
or changed behind its back, and keeps the last file it wrote beside it for recovery.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from cnc.experiment.bounded_load import parse_yaml, read_bounded_text
from cnc.experiment.errors import ExperimentError
from cnc.experiment.files import atomic_write
from cnc.experiment.run_file import check_seal, seal

EXPERIMENT_FILE = "experiment.yaml"
LAST_GOOD_FILE = ".experiment.last-good.yaml"  # the last run file a Tracker wrote, for recovery
CONFIG_FILE = "config.yaml"
STALE_SECONDS = 3600.0  # a temp file or unreferenced checkpoint this old is no write in progress
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(model_id: str) -> str:
    """A readable, collision-free file name for an id: the sanitized id plus a short hash of the
    id itself, so 'a b', 'a/b' and 'a_b' never share a file. (Directories written before keep
    working: the experiment file records each model's path.)"""
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:10]
    return f"{_SAFE.sub('_', model_id)[:80]}-{digest}"


class Tracker:
    """Appends metrics, operations and models to `<directory>/experiment.yaml`."""

    def __init__(self, directory: str | Path, title: str | None = None, task: str | None = None,
                 task_options: dict | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / EXPERIMENT_FILE
        self.lock = FileLock(str(self.directory / ".experiment.lock"), timeout=60)
        with self.lock:
            if not self.path.exists():
                self._write({"metrics": [], "operations": [], "models": []})
            if task is not None or title is not None:
                config = {"title": title or self.directory.name, "experiment": EXPERIMENT_FILE}
                if task is not None:
                    config["task"] = {"entry": task, "options": task_options or {}}
                data = yaml.safe_dump(config, sort_keys=False).encode()
                atomic_write(self.directory / CONFIG_FILE, lambda fh: fh.write(data))

    # -- declarations
    def metric(self, name: str, *, unit: str = "", format: str | None = None, higher_is_better: bool = True,
               primary: bool = False, min: float | None = None, max: float | None = None) -> None:
        entry = {"name": name, "unit": unit, "format": format, "higher_is_better": higher_is_better,
                 "primary": primary, "min": min, "max": max}
        self._upsert("metrics", "name", {k: v for k, v in entry.items() if v is not None})

    def operation(self, name: str, parameters: list[str] | None = None) -> None:
        self._upsert("operations", "name", {"name": name, "parameters": list(parameters or [])})

    # -- models
    def log_model(self, model_id: str, *, base: str | None = None,
                  operation: tuple[str, dict] | str | None = None, metrics: dict[str, float | None] | None = None,
                  model: Any = None, tag: str = "", outputs: Any = None, replace: bool = False) -> str:
        """Record a model; `model` is a torch.nn.Module, a state dict, or a checkpoint path;
        `outputs` (optional) is an .npz path or an array of output probabilities [N, C]; for a
        generative task, a list of generated texts (one per instance) or a JSON file of them.

        Logging an id again updates it: metrics are merged (a metric logged before stays) and only
        the fields given change; `replace=True` makes the new entry replace the old one whole."""
        entry: dict[str, Any] = {"id": str(model_id)}
        if tag or replace:
            entry["tag"] = tag
        if base is not None or replace:
            entry["base"] = base
        if operation is not None:
            name, params = (operation, {}) if isinstance(operation, str) else operation
            entry["operation"] = {"name": name, "parameters": dict(params)}
        entry["metrics"] = {str(k): _finite(model_id, k, v) for k, v in (metrics or {}).items()}
        if model is not None:
            entry["checkpoint"] = self._save_checkpoint(str(model_id), model)
        if outputs is not None:
            entry["outputs"] = self._save_outputs(str(model_id), outputs)
        self._upsert("models", "id", entry, warn_on_update=True, replace=replace)
        return str(model_id)

    def _save_checkpoint(self, model_id: str, model: Any) -> str:
        if isinstance(model, (str, Path)):
            return str(Path(model).resolve())
        import torch

        state = model.state_dict() if hasattr(model, "state_dict") else model
        rel = Path("checkpoints") / f"{file_stem(model_id)}.pt"
        atomic_write(self.directory / rel, lambda fh: torch.save(state, fh))
        return rel.as_posix()

    def _save_outputs(self, model_id: str, outputs: Any) -> str:
        if isinstance(outputs, (str, Path)):
            return str(Path(outputs).resolve())
        if isinstance(outputs, (list, tuple)) and all(isinstance(t, str) for t in outputs):
            rel = Path("outputs") / f"{file_stem(model_id)}.json"  # texts of a generative model
            data = json.dumps({"texts": list(outputs)}, ensure_ascii=False).encode()
            atomic_write(self.directory / rel, lambda fh: fh.write(data))
            return rel.as_posix()
        import numpy as np

        rel = Path("outputs") / f"{file_stem(model_id)}.npz"
        atomic_write(self.directory / rel, lambda fh: np.savez_compressed(fh, probs=np.asarray(outputs)))
        return rel.as_posix()

    # -- the file
    def _read(self) -> dict:
        text = read_bounded_text(self.path)
        check = check_seal(text)
        if check.problem is not None:
            raise ExperimentError(
                f"{check.describe(self.path)}. The Tracker refuses to write over it, which could lose models. "
                f"Fix: compare it with {self.directory / LAST_GOOD_FILE}, the last file the Tracker wrote; copy "
                f"that back over {EXPERIMENT_FILE} to recover, or call Tracker(...).accept_file() to keep the "
                f"file as it is now.")
        data = parse_yaml(text) or {}
        for key in ("metrics", "operations", "models"):
            data.setdefault(key, [])
        return data

    def accept_file(self) -> None:
        """Take the run file as it is now (after a deliberate edit, or once it is restored): reseal it."""
        with self.lock:
            text = read_bounded_text(self.path)
            data = parse_yaml(text) or {}
            for key in ("metrics", "operations", "models"):
                data.setdefault(key, [])
            self._write(data)

    def _write(self, data: dict) -> None:
        text = seal(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), len(data.get("models") or [])).encode()
        atomic_write(self.path, lambda fh: fh.write(text))
        atomic_write(self.directory / LAST_GOOD_FILE, lambda fh: fh.write(text))

    def _upsert(self, section: str, key: str, entry: dict, warn_on_update: bool = False,
                replace: bool = False) -> None:
        with self.lock:
            data = self._read()
            items = data[section]
            for i, old in enumerate(items):
                if old.get(key) == entry[key]:
                    if warn_on_update:
                        how = "replacing it" if replace else "merging the new values into it"
                        warnings.warn(f"{section[:-1]} '{entry[key]}' was already logged; {how}.", stacklevel=3)
                    items[i] = entry if replace else _merged(old, entry)
                    break
            else:
                items.append(entry)
            self._write(data)


def _merged(old: dict, new: dict) -> dict:
    out = {**old, **new}
    if isinstance(old.get("metrics"), dict) and "metrics" in new:
        out["metrics"] = {**old["metrics"], **new["metrics"]}
    return out


def _finite(model_id: str, name: Any, value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"log_model('{model_id}'): metric '{name}' = {value!r} is not a finite number. "
                         f"Fix: log a finite number, or None when the value is missing.")
    return number


# ---------------------------------------------------------------- debris

@dataclass
class Debris:
    """Files in a run folder that no model needs: temp files of writers killed mid-write, and
    checkpoints / outputs that no model references. `problem` is set when the run file cannot be
    trusted to list every model (cut or edited): then nothing is called unreferenced."""

    temp_files: list[Path] = field(default_factory=list)
    unreferenced: list[Path] = field(default_factory=list)
    problem: str | None = None
    bytes: int = 0  # their total size

    @property
    def files(self) -> list[Path]:
        return self.temp_files + self.unreferenced


def find_debris(run_dir: str | Path, older_than: float = STALE_SECONDS) -> Debris:
    """What `clean_debris` would delete (nothing is touched). Files younger than `older_than`
    seconds are left out: they may belong to a write still in progress."""
    run_dir = Path(run_dir)
    cutoff = time.time() - older_than
    found = Debris()
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "outputs"):
        if folder.is_dir():
            found.temp_files += sorted(p for p in folder.glob(".*.tmp") if p.is_file() and p.stat().st_mtime < cutoff)
    path = run_dir / EXPERIMENT_FILE
    try:
        text = read_bounded_text(path)
        check = check_seal(text)
        if check.problem is not None:
            found.problem = check.describe(path)
            found.bytes = sum(p.stat().st_size for p in found.files)
            return found
        models = (parse_yaml(text) or {}).get("models") or []
    except (ExperimentError, yaml.YAMLError, ValueError) as exc:
        found.problem = f"{path}: {exc}"
        found.bytes = sum(p.stat().st_size for p in found.files)
        return found
    referenced = set()
    for m in models if isinstance(models, list) else []:
        for key in ("checkpoint", "outputs"):
            if isinstance(m, dict) and isinstance(m.get(key), str):
                p = Path(m[key])
                referenced.add((p if p.is_absolute() else run_dir / p).resolve())
    for folder in (run_dir / "checkpoints", run_dir / "outputs"):
        if folder.is_dir():
            found.unreferenced += sorted(
                p for p in folder.iterdir()
                if p.is_file() and not p.name.endswith(".tmp") and p.resolve() not in referenced
                and p.stat().st_mtime < cutoff)
    found.bytes = sum(p.stat().st_size for p in found.files)
    return found


def clean_debris(run_dir: str | Path, older_than: float = STALE_SECONDS) -> Debris:
    """Delete what `find_debris` finds, under the run folder's lock (no Tracker writes meanwhile);
    returns what was deleted."""
    run_dir = Path(run_dir)
    with FileLock(str(run_dir / ".experiment.lock"), timeout=60):
        found = find_debris(run_dir, older_than)
        for p in found.files:
            p.unlink(missing_ok=True)
    return found
