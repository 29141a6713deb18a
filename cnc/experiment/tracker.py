"""Log models from a training script into an experiment directory the app can open.

    from cnc import Tracker
    t = Tracker("runs/resnet-compress", task="mypkg.task:MyTask")
    t.metric("Latency", unit="ms", higher_is_better=False)
    t.operation("magnitude prune", ["amount"])
    t.log_model("m50", base="base", operation=("magnitude prune", {"amount": 0.5}),
                metrics={"Latency": 3.1}, model=pruned_module)

Every write holds a file lock and replaces files atomically, so several training processes can
log into one directory at once and a crash never leaves a half-written experiment.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from cnc.experiment.files import atomic_write

EXPERIMENT_FILE = "experiment.yaml"
CONFIG_FILE = "config.yaml"
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
                  model: Any = None, tag: str = "", outputs: Any = None) -> str:
        """Record a model; `model` is a torch.nn.Module, a state dict, or a checkpoint path;
        `outputs` (optional) is an .npz path or an array of output probabilities [N, C]; for a
        generative task, a list of generated texts (one per instance) or a JSON file of them."""
        entry: dict[str, Any] = {"id": str(model_id), "tag": tag, "base": base}
        if operation is not None:
            name, params = (operation, {}) if isinstance(operation, str) else operation
            entry["operation"] = {"name": name, "parameters": dict(params)}
        entry["metrics"] = {k: (None if v is None else float(v)) for k, v in (metrics or {}).items()}
        if model is not None:
            entry["checkpoint"] = self._save_checkpoint(str(model_id), model)
        if outputs is not None:
            entry["outputs"] = self._save_outputs(str(model_id), outputs)
        self._upsert("models", "id", entry, warn_on_update=True)
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
        data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        for key in ("metrics", "operations", "models"):
            data.setdefault(key, [])
        return data

    def _write(self, data: dict) -> None:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()
        atomic_write(self.path, lambda fh: fh.write(text))

    def _upsert(self, section: str, key: str, entry: dict, warn_on_update: bool = False) -> None:
        with self.lock:
            data = self._read()
            items = data[section]
            for i, old in enumerate(items):
                if old.get(key) == entry[key]:
                    if warn_on_update:
                        warnings.warn(f"{section[:-1]} '{entry[key]}' was already logged; updating it.", stacklevel=3)
                    items[i] = {**old, **entry}
                    break
            else:
                items.append(entry)
            self._write(data)
