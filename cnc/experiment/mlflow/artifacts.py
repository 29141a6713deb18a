"""Download a run's checkpoint and outputs from MLflow into the cache, atomically.

Checkpoints end up as a local file the task loads with `torch.load(..., weights_only=True)`:
a `.pt`/`.pth` artifact or a `mlflow.pytorch.log_state_dict` folder as is. A model logged with
`mlflow.pytorch.log_model` is a pickled module or a torch.export archive, both of which execute
code when loaded; it is converted to a state dict only when `trust_pickled_models` is set.
"""
from __future__ import annotations

import posixpath
import tempfile
from pathlib import Path

from cnc.experiment.files import atomic_copy

CHECKPOINT_SUFFIXES = (".pt", ".pth")
STATE_DICT_FILE = "state_dict.pth"  # what mlflow.pytorch.log_state_dict writes
MLMODEL = "MLmodel"


class ArtifactError(RuntimeError):
    """A run's checkpoint exists but cannot be used; the message says why and the fix."""


class RunArtifacts:
    """One run's artifacts, read through its artifact repository (built from the run's
    `artifact_uri`, so no `get_run` per call); each folder is listed at most once."""

    def __init__(self, repo):
        self.repo = repo  # an mlflow ArtifactRepository: list_artifacts(path), download_artifacts(path, dst)
        self._listed: dict[str | None, dict[str, bool]] = {}

    def listing(self, path: str | None = None) -> dict[str, bool]:
        """artifact path -> is_dir, for one folder of the run's artifacts."""
        if path not in self._listed:
            try:
                self._listed[path] = {f.path: f.is_dir for f in self.repo.list_artifacts(path)}
            except Exception:  # a missing folder lists as an error on some stores
                self._listed[path] = {}
        return self._listed[path]

    def exists(self, path: str) -> bool | None:
        """None when absent, else whether it is a folder."""
        parent = posixpath.dirname(path.strip("/")) or None
        return self.listing(parent).get(path.strip("/"))

    def download(self, path: str, dst: str) -> Path:
        return Path(self.repo.download_artifacts(path, dst))


def fetch_file(artifacts: RunArtifacts, path: str, dest: Path) -> bool:
    """Download one artifact file to `dest`; False when the run has none."""
    if artifacts.exists(path) is not False:
        return False
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as tmp:
        atomic_copy(artifacts.download(path, tmp), dest)
    return True


def _find(artifacts: RunArtifacts, wanted: str | None, logged: list) -> tuple[str, object] | None:
    """(artifact path, or "" for a logged model, its logged-model entity) of the run's checkpoint."""
    if wanted:
        return (wanted, None) if artifacts.exists(wanted) is not None else None
    root = artifacts.listing()
    files = sorted(p for p, is_dir in root.items() if not is_dir and p.endswith(CHECKPOINT_SUFFIXES))
    if files:
        return files[0], None
    for folder in sorted(p for p, is_dir in root.items() if is_dir):
        inside = artifacts.listing(folder)
        if posixpath.join(folder, STATE_DICT_FILE) in inside or posixpath.join(folder, MLMODEL) in inside:
            return folder, None
    if logged:  # MLflow 3 keeps log_model output outside the run's artifacts
        return "", max(logged, key=lambda m: m.creation_timestamp or 0)
    return None


def fetch_checkpoint(artifacts: RunArtifacts, settings, logged: list, dest: Path) -> bool:
    """Download the run's checkpoint as a weights-only file at `dest`; False when it has none."""
    found = _find(artifacts, settings.checkpoint, logged)
    if found is None:
        return False
    path, model = found
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as tmp:
        if model is not None:
            import mlflow

            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location, dst_path=tmp,
                                                             tracking_uri=settings.tracking_uri))
        else:
            local = artifacts.download(path, tmp)
        atomic_copy(_weights_file(local, settings.trust_pickled_models, tmp), dest)
    return True


def _weights_file(local: Path, trusted: bool, tmp: str) -> Path:
    if local.is_file():
        return local
    state = next(iter(sorted(local.rglob(STATE_DICT_FILE))), None)
    if state is not None:
        return state
    if not (local / MLMODEL).exists():
        raise ArtifactError(f"artifact folder '{local.name}' holds no {STATE_DICT_FILE}, .pt file or MLflow model. "
                            f"Fix: set mlflow.checkpoint to the checkpoint's artifact path.")
    if not trusted:
        raise ArtifactError("its model was logged with mlflow.pytorch.log_model, whose formats (pickle, torch.export) "
                            "run code when loaded, so it is not loaded with weights_only=True. Fix: also log "
                            "mlflow.pytorch.log_state_dict(model.state_dict(), 'checkpoint') or a .pt artifact, or "
                            "set mlflow.trust_pickled_models: true for a store you trust.")
    import mlflow.pytorch
    import torch

    model = mlflow.pytorch.load_model(str(local), map_location="cpu")
    state = model.state_dict() if callable(model.state_dict) else model.state_dict
    out = Path(tmp) / "converted.pt"
    torch.save({k: v.detach().clone() for k, v in state.items()}, out)
    return out
