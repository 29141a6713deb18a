"""A folder of model variants opened with no YAML: `cnc --config path/to/folder`.

The folder's Hugging Face model directories (a `config.json` beside *.safetensors) and `.gguf`
files become the models. Each one's parent comes from its model card (`base_model` in README.md's
front matter), its GGUF `general.base_model.*` metadata, or, failing both, the name rule: the
longest other model's name that starts its own ("tiny-llama-Q4_K_M.gguf" -> "tiny-llama"), with a
notice that it was guessed. The operation comes from the quantization ("GGUF Q4_K_M",
"compressed-tensors W4A16, group 128", "GPTQ 4-bit g128"); metrics known without running anything:
file size, bits per weight, parameters. With a prompt file (`prompts.jsonl` or `prompts.json`) and a
float base directory, the task is `HFTask` (Behaviors and Layers); otherwise a weights-only task
(Layers alone). A file that cannot be read gets a notice naming it; the others still open. A
`config.yaml` or `experiment.yaml` in the folder wins over all of this (it is then a Tracker or
YAML experiment).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from cnc.experiment.errors import ConfigError, ExperimentError, TaskError
from cnc.experiment.files import safetensors_header
from cnc.experiment.gguf_file import is_gguf, read_gguf
from cnc.experiment.hf_quantization import parse_quantization_config

PROMPT_FILES = ("prompts.jsonl", "prompts.json")
METRICS = [
    {"name": "File size", "format": ".1f", "unit": "MB", "higher_is_better": False, "primary": True},
    {"name": "Bits per weight", "format": ".2f", "higher_is_better": False, "primary": True},
    {"name": "Parameters", "format": ",.0f", "higher_is_better": False},
]


def is_variant_folder(path: Path) -> bool:
    """A directory that is not a Tracker / YAML experiment and holds GGUF files or model directories."""
    if not path.is_dir() or (path / "config.yaml").exists() or (path / "experiment.yaml").exists():
        return False
    return any(_kind(p) for p in path.iterdir())


def _kind(p: Path) -> str | None:
    if p.is_file() and p.suffix.lower() == ".gguf":
        return "gguf"
    if p.is_dir() and (p / "config.json").is_file():
        return "hf"
    return None


def stamp(folder: Path) -> tuple:
    """Changes when a model is added, removed or rewritten (the server then reloads the folder)."""
    out = []
    for p in sorted(folder.iterdir()):
        if _kind(p) or p.name in PROMPT_FILES:
            st = os.stat(p)
            out.append((p.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _model_card(folder: Path) -> dict:
    """README.md's YAML front matter (the Hub's model card metadata), {} when there is none."""
    import yaml

    card = folder / "README.md"
    if not card.is_file():
        return {}
    text = card.read_text(errors="replace")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    try:
        data = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def describe_quantization(qc: Any, where: str | Path) -> str:
    """The operation a Hugging Face `quantization_config` names (cnc.experiment.hf_quantization reads it)."""
    try:
        return parse_quantization_config(qc, Path(where)).describe()
    except TaskError as exc:
        raise ExperimentError(str(exc)) from None


def _safetensors_stats(folder: Path) -> tuple[int, int]:
    """(bytes of the weights files, parameters from their headers; no tensor is read)."""
    size = params = 0
    for f in sorted(folder.glob("*.safetensors")):
        size += f.stat().st_size
        for name, t in safetensors_header(f)[0].items():
            if name != "__metadata__":
                n = 1
                for d in t.get("shape", []):
                    n *= int(d)
                params += n
    return size, params


def _hf_model(folder: Path, notices: list[str]) -> dict | None:
    where = str(folder / "config.json")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        notices.append(f"{where}: cannot read it ({exc}); the model is left out.")
        return None
    size, params = _safetensors_stats(folder)
    if not params:
        notices.append(f"{folder}: no *.safetensors weights; the model is left out (only safetensors are read).")
        return None
    model: dict[str, Any] = {"id": folder.name, "checkpoint": str(folder), "float": True,
                             "metrics": {"File size": size / 1e6, "Parameters": params,
                                         "Bits per weight": 8.0 * size / params}}
    qc = config.get("quantization_config")
    if isinstance(qc, dict):
        try:
            model["operation"] = describe_quantization(qc, where)
        except ExperimentError as exc:
            notices.append(f"{exc}; the model is left out.")
            return None
        model["float"] = False
    card = _model_card(folder)
    base = card.get("base_model")
    model["declared_base"] = (base[0] if isinstance(base, list) and base else base) or None
    model["relation"] = card.get("base_model_relation")
    model["aliases"] = {folder.name, str(config.get("_name_or_path") or "").rstrip("/").rpartition("/")[2]} - {""}
    return model


def _gguf_model(path: Path, notices: list[str]) -> dict | None:
    try:
        info = read_gguf(path)
    except ExperimentError as exc:
        notices.append(f"{exc} The model is left out.")
        return None
    bases = [b.get("name") or b.get("repo_url", "").rstrip("/").rpartition("/")[2] for b in info.base_models]
    return {"id": path.stem, "checkpoint": str(path), "float": info.file_type in ("F32", "F16", "BF16"),
            "operation": f"GGUF {info.file_type}" if info.file_type else "GGUF",
            "metrics": {"File size": path.stat().st_size / 1e6, "Parameters": info.parameters,
                        "Bits per weight": info.bits_per_weight},
            "declared_base": next((b for b in bases if b), None), "relation": "quantized",
            "aliases": {path.stem, info.name}}


def _by_name(found: list[dict], name: str | None, me: str) -> str | None:
    if not name:
        return None
    key = str(name).rstrip("/").rpartition("/")[2].lower()
    for m in found:
        if m["id"] != me and key in {a.lower() for a in m["aliases"]}:
            return m["id"]
    return None


def _name_rule(found: list[dict], me: dict) -> str | None:
    """The longest other model id that begins this one's, at a separator; a float model wins a tie."""
    best = None
    for m in found:
        other = m["id"]
        if other != me["id"] and me["id"].lower().startswith(other.lower()) \
                and me["id"][len(other):len(other) + 1] in ("-", "_", ".", " "):
            if best is None or len(other) > len(best["id"]) or (len(other) == len(best["id"]) and m["float"]):
                best = m
    return best["id"] if best else None


def scan(folder: Path) -> tuple[dict, list[str], Path | None]:
    """(experiment dict, notices, the float base directory for a task or None)."""
    notices: list[str] = []
    found = []
    for p in sorted(folder.iterdir()):
        kind = _kind(p)
        if kind == "hf":
            m = _hf_model(p, notices)
        elif kind == "gguf" or (p.is_file() and p.suffix.lower() not in (".json", ".jsonl", ".md", ".txt")
                                and is_gguf(p)):
            m = _gguf_model(p, notices)
        else:
            continue
        if m is not None:
            found.append(m)
    if not found:
        raise ConfigError(f"{folder}: no model found (Hugging Face model directories with config.json and "
                          "*.safetensors, or .gguf files). Fix: point --config at the folder holding them.")
    ids = {m["id"] for m in found}
    for m in found:
        parent = _by_name(found, m["declared_base"], m["id"])
        if parent is None:
            parent = _name_rule(found, m)
            if parent is not None:
                what = f"its declared base {m['declared_base']!r} is not in the folder; " if m["declared_base"] else ""
                notices.append(f"{m['checkpoint']}: {what}base guessed from the file name: {parent}.")
            elif m["declared_base"] or not m["float"]:
                notices.append(f"{m['checkpoint']}: no base found in the folder (declared: "
                               f"{m['declared_base'] or 'none'}); shown as a root.")
        m["base"] = parent if parent in ids else None
    _break_cycles(found)
    models = []
    for m in found:
        entry = {"id": m["id"], "base": m["base"], "checkpoint": m["checkpoint"], "metrics": m["metrics"]}
        if m["base"] is not None:
            entry["operation"] = {"name": m.get("operation") or (m["relation"] or "fine-tune")}
        models.append(entry)
    base_dir = next((Path(m["checkpoint"]) for m in found if m["base"] is None and m["float"]
                     and Path(m["checkpoint"]).is_dir()), None)
    return {"metrics": METRICS, "models": models}, notices, base_dir


def _break_cycles(found: list[dict]) -> None:
    by_id = {m["id"]: m for m in found}
    for m in found:
        seen, at = {m["id"]}, m["base"]
        while at is not None:
            if at in seen:
                m["base"] = None
                break
            seen.add(at)
            at = by_id[at]["base"]


def task_section(folder: Path, base_dir: Path | None) -> dict:
    """HFTask over the folder's prompt file when there is one (and a float base directory), else
    the weights-only task."""
    prompts = next((folder / n for n in PROMPT_FILES if (folder / n).is_file()), None)
    if prompts is not None and base_dir is not None:
        return {"entry": "cnc.evaluation.hf_task:HFTask",
                "options": {"model_dir": str(base_dir), "data": str(prompts), "max_new_tokens": 16}}
    return {"entry": "cnc.evaluation.weights_task:WeightsTask"}
