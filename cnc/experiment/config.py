"""The YAML config: schema (pydantic), validation with clear errors, and path resolution.

Why pydantic: it reports every unknown key, wrong type and missing field with its location,
which we turn into one readable paragraph naming the file, the field and the fix.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Callable, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cnc.experiment.errors import ConfigError, ExperimentError
from cnc.experiment.forest import Experiment, parse_experiment, read_data_file
from cnc.experiment.run_file import HEADER, check_seal
from cnc.experiment.tracker import LAST_GOOD_FILE
from cnc.experiment.variant_folder import is_variant_folder

DEFAULT_CACHE_DIR = ".cnc-cache"
VIEW_DAYS = 90  # default expiry of saved views (config `views.max_age_days`, env CNC_VIEW_DAYS)
VIEW_MB = 64  # default size cap of the view store (config `views.max_mb`, env CNC_VIEW_MB)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScalarOutput(_Strict):
    """An extra per-instance scalar the task computes (compared by difference / ratio)."""

    name: str
    description: str = ""


class GenerationSection(_Strict):
    """How a generative task's models generate (docs/generative.md); overrides the task's defaults."""

    max_new_tokens: Optional[int] = Field(None, ge=1, le=4096, description="tokens generated per prompt")
    stop: Optional[list[Annotated[str, Field(min_length=1)]]] = Field(
        None, description="output is cut at the first of these strings")


class TaskSection(_Strict):
    entry: str = Field(description="package.module:callable returning a cnc.evaluation.task.Task")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for entry")
    activation_sample: int = Field(256, ge=1, description="instances in the fixed activation sample")
    latency_runs: int = Field(0, ge=0, description="measure latency with this many runs (0: off)")
    batch_size: int = Field(256, ge=1, description="instances per evaluation batch")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes for a task's dataset()")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$",
                        description="auto, cpu, cuda, cuda:N or mps (--device overrides it)")
    generation: Optional[GenerationSection] = Field(None, description="generative tasks: max_new_tokens, stop")


class PrecomputeSection(_Strict):
    """Where precompute runs: in this process (default), or as Dask tasks (README "Precompute on a cluster")."""

    scheduler: Optional[str] = Field(None, description="address of a running dask scheduler, e.g. tcp://host:8786")
    workers: int = Field(0, ge=0, description="without a scheduler: start a local Dask cluster of this many processes")
    resources: dict[str, float] = Field(default_factory=dict, description="worker resources per model task, e.g. {GPU: 1}")
    retries: int = Field(2, ge=0, description="times a task is retried after its worker died or erred")


class Defaults(_Strict):
    color: Optional[str] = None
    size: Optional[str] = None
    x: Optional[str] = None
    y: Optional[str] = None


class ViewsSection(_Strict):
    """Saved long view states (`?view=<id>`): their own capped cache, expiring when unused."""

    max_age_days: float = Field(VIEW_DAYS, gt=0, description="forget a saved view unused this long")
    max_mb: float = Field(VIEW_MB, gt=0, description="size cap of the view store (oldest views go first)")


VIEW_ENV = {"max_age_days": "CNC_VIEW_DAYS", "max_mb": "CNC_VIEW_MB"}


def views_with_env(views: ViewsSection, env: dict | None = None) -> ViewsSection:
    """Environment variables override the config file's `views` keys."""
    env = os.environ if env is None else env
    values = views.model_dump()
    for key, var in VIEW_ENV.items():
        if env.get(var):
            values[key] = env[var]
    try:
        return ViewsSection.model_validate(values)
    except ValidationError as exc:
        bad = ", ".join(f"{VIEW_ENV[str(e['loc'][0])]}={e.get('input')!r} ({e['msg']})" for e in exc.errors())
        raise ConfigError(f"environment: {bad}. Fix: a positive number.") from None


class ConfigFile(_Strict):
    title: str = "Compress and Compare"
    experiment: Union[str, dict[str, Any]] = Field(
        description="path to an experiment file (YAML/JSON) or Tracker directory, or the experiment inline"
    )
    build: Optional[str] = Field(
        None, description="entry point called with the experiment path when the file is missing"
    )
    task: Optional[TaskSection] = None
    cache_dir: Optional[str] = None
    defaults: Defaults = Field(default_factory=Defaults)
    views: ViewsSection = Field(default_factory=ViewsSection)
    precompute: PrecomputeSection = Field(default_factory=PrecomputeSection)


@dataclass
class Config:
    title: str
    experiment: Experiment
    path: Path | None
    experiment_path: Path | None
    cache_dir: Path
    task: TaskSection | None = None
    defaults: Defaults = field(default_factory=Defaults)
    views: ViewsSection = field(default_factory=ViewsSection)
    precompute: PrecomputeSection = field(default_factory=PrecomputeSection)
    spec: str | None = None  # what to reload from when there is no file (e.g. "mlflow:...#exp")
    watch: Callable[[], Any] | None = None  # a stamp that changes when a non-file source changed
    notices: list[str] = field(default_factory=list)  # per-model problems the header shows
    fetch_sources: Callable[[], None] | None = None  # sets models' files that a source (MLflow) fetches on demand

    @property
    def folder(self) -> Path | None:
        """The config's folder (entry points next to it are importable)."""
        source = self.path or self.experiment_path
        return source.parent.resolve() if source is not None else None


def _format_validation(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(ConfigFile.model_fields) if len(err["loc"]) == 1 else "see the config reference"
            lines.append(f"unknown key '{loc}' (allowed: {allowed})")
        elif err["type"] == "missing":
            lines.append(f"missing required key '{loc}'")
        else:
            lines.append(f"'{loc}': {err['msg']} (got {err.get('input')!r})")
    return f"{path}: invalid config: " + "; ".join(lines) + ". Fix these keys; README 'Config reference' lists them."


def _expand(value: str, cache_dir: Path, base: Path) -> Path:
    p = Path(value.replace("{cache_dir}", str(cache_dir))).expanduser()
    return p if p.is_absolute() else (base / p)


def load_config(path: str | Path, cache_dir: str | Path | None = None) -> Config:
    """Read and validate a config; `cache_dir` (from the CLI) overrides the file's.

    A model-info JSON or experiment file given directly becomes a metrics-only config.
    """
    from cnc.experiment.entry_points import load_entry_point

    if str(path).startswith("mlflow:"):
        return _mlflow_config(str(path), Path(cache_dir or DEFAULT_CACHE_DIR).resolve())
    path = Path(path)
    if path.is_dir() and is_variant_folder(path):  # model directories and GGUF files, no YAML
        return _folder_config(path, Path(cache_dir or DEFAULT_CACHE_DIR).resolve())
    if path.is_dir():  # a Tracker directory: its config when it has one, else its experiment
        path = path / "config.yaml" if (path / "config.yaml").exists() else path / "experiment.yaml"
    data = read_data_file(path)
    base = path.parent.resolve()
    if isinstance(data, dict) and "models" in data:  # an experiment, not a config
        exp = parse_experiment(data, where=str(path), base_dir=base)
        _warn_if_cut(path, exp)
        cdir = Path(cache_dir or DEFAULT_CACHE_DIR).resolve()
        return Config(title=path.stem, experiment=exp, path=None, experiment_path=path, cache_dir=cdir,
                      views=views_with_env(ViewsSection()), notices=list(exp.notices))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping with at least 'experiment'.")
    try:
        cf = ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(path, exc)) from None
    cdir = Path(cache_dir) if cache_dir else _expand(cf.cache_dir or DEFAULT_CACHE_DIR, Path(DEFAULT_CACHE_DIR), Path.cwd())
    cdir = cdir.resolve()
    watch, notices, fetch_sources = None, [], None
    if isinstance(cf.experiment, dict) and "mlflow" in cf.experiment:
        from cnc.experiment.mlflow.source import open_source

        source = open_source(cf.experiment["mlflow"], f"{path} (experiment.mlflow)", base, cdir)
        snap = source.current()
        exp, watch, notices, exp_path = snap.experiment, source.stamp, snap.notices, None
        fetch_sources = partial(source.resolve, snap)
    elif isinstance(cf.experiment, dict):
        exp = parse_experiment(cf.experiment, where=f"{path} (experiment)", base_dir=base)
        exp_path = None
    else:
        exp_path = _expand(cf.experiment, cdir, base)
        target = exp_path / "experiment.yaml" if exp_path.is_dir() else exp_path
        if not target.exists() and cf.build:
            load_entry_point(cf.build, base)(target)
        if not target.exists():
            raise ConfigError(
                f"{path}: 'experiment' points at {target}, which does not exist. "
                f"Fix: correct the path (relative paths are relative to the config file)."
            )
        exp = parse_experiment(read_data_file(target), where=str(target), base_dir=target.parent)
        _warn_if_cut(target, exp)
        exp_path = target
    _check_defaults(path, cf.defaults, exp)
    harness = [m.id for m in exp.models.values() if m.lm_eval]
    if cf.task is not None and harness:
        raise ConfigError(
            f"{path}: 'task' evaluates models itself, but model(s) {', '.join(harness[:3])} take their outputs from "
            f"lm_eval folders, whose documents are not the task's instances. Fix: open the harness runs in a "
            f"config without 'task' (or the experiment file alone).")
    return Config(
        title=cf.title, experiment=exp, path=path, experiment_path=exp_path,
        cache_dir=cdir, task=cf.task, defaults=cf.defaults, views=views_with_env(cf.views),
        precompute=cf.precompute, watch=watch, notices=_joined(notices, exp.notices), fetch_sources=fetch_sources,
    )


def _warn_if_cut(path: Path, exp: Experiment) -> None:
    """A Tracker run file cut short may still parse: it loads, with a notice saying models may be missing."""
    with open(path, "rb") as fh:
        if fh.read(len(HEADER)) != HEADER.encode():
            return
    check = check_seal(path.read_text(encoding="utf-8"))
    if check.problem == "cut":
        message = (f"Tracker run file cut short: showing the {len(exp.models)} model(s) it still lists; models "
                   f"logged at its end may be gone. Fix: copy {LAST_GOOD_FILE}, the last file the Tracker wrote, "
                   f"over it ({path}).")
        exp.notices.append(message)
        exp.warnings.append(message)


def _check_defaults(path: Path, defaults: Defaults, exp: Experiment) -> None:
    for key in ("color", "size", "x", "y"):
        name = getattr(defaults, key)
        if name is not None and name not in exp.metrics:
            raise ConfigError(
                f"{path}: defaults.{key} is '{name}', which is not a metric of the experiment "
                f"(metrics: {', '.join(exp.metrics)}). Fix: use one of those names."
            )


__all__ = ["Config", "ConfigError", "ExperimentError", "load_config", "load_experiment"]


def load_experiment(path: str | Path) -> Experiment:
    """Load an experiment from our YAML/JSON, an original model-info JSON, a config, or a Tracker
    directory (here rather than in cnc.experiment.forest because it also reads configs)."""
    path = Path(path)
    if path.is_dir():
        path = path / "experiment.yaml"
    data = read_data_file(path)
    if isinstance(data, dict) and "models" not in data and "experiment" in data:
        return load_config(path).experiment
    return parse_experiment(data, where=str(path), base_dir=path.parent)


def _folder_config(folder: Path, cache_dir: Path) -> Config:
    """A folder of model variants (cnc.experiment.variant_folder); reloaded when its files change."""
    from cnc.experiment import variant_folder

    folder = folder.resolve()
    data, notices, base_dir = variant_folder.scan(folder)
    exp = parse_experiment(data, where=str(folder), base_dir=folder)
    return Config(title=folder.name, experiment=exp, path=None, experiment_path=None, cache_dir=cache_dir,
                  task=TaskSection(**variant_folder.task_section(folder, base_dir)), spec=str(folder),
                  watch=lambda: variant_folder.stamp(folder), notices=notices,
                  views=views_with_env(ViewsSection()))


def _mlflow_config(spec: str, cache_dir: Path) -> Config:
    """A metrics-only config for `--config mlflow:...` (relative paths: the current folder)."""
    from cnc.experiment.mlflow.source import open_source, parse_spec

    source = open_source(parse_spec(spec), spec, Path.cwd(), cache_dir)
    snap = source.current()
    return Config(title=source.settings.experiment, experiment=snap.experiment, path=None, experiment_path=None,
                  cache_dir=cache_dir, spec=spec, watch=source.stamp, notices=snap.notices,
                  views=views_with_env(ViewsSection()), fetch_sources=partial(source.resolve, snap))


def _joined(notices: list[str], more: list[str]) -> list[str]:
    """The source's own notices list, extended in place: an MLflow source appends to it later (when
    precompute resolves a run's files), and the header must see those too."""
    notices.extend(n for n in more if n not in notices)
    return notices
