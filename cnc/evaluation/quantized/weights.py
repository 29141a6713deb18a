"""Layer summaries of a model's weights read tensor by tensor, without building the model: a
quantized model through its `QuantizedWeights` reader, a float one from its safetensors files.

Against a reference (the float base), each module also gets its quantization error, exact over
every element: sums of squared difference, of the reference's and the model's squares and of their
products, so a parent row's relative error, SQNR and cosine aggregate exactly. Both models are
streamed together: peak memory is about one tensor of each plus the summaries.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from cnc.evaluation.inspection import RunningSummary, sample_positions, shared_edges
from cnc.evaluation.quantized import gguf as _gguf  # noqa: F401 - registers the GGUF reader
from cnc.evaluation.quantized.base import LayerStorage, open_quantized
from cnc.experiment.errors import TaskError
from cnc.experiment.files import safetensors_header

Loader = Callable[[], np.ndarray]
PIECE = 1 << 16  # elements per step of the error sums: the pieces stay in the CPU's cache


def _safetensors_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise TaskError(f"{path}: no *.safetensors weights to summarize (only safetensors are read).")
        return files
    if path.suffix == ".safetensors" and path.is_file():
        return [path]
    raise TaskError(f"{path}: not a model directory, .safetensors file or quantized model this app reads.")


SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
                      "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8}


def float_tensors(path: str | Path) -> dict[str, tuple[LayerStorage, Loader]]:
    """Every tensor of a float checkpoint (a model directory's *.safetensors, or one file), read
    lazily: name -> (storage, loader of float32 values). Each tensor is read with a plain file read,
    not a memory map, so the pages of tensors already summarized do not stay in the process."""
    out: dict[str, tuple[LayerStorage, Loader]] = {}
    for file in _safetensors_files(Path(path)):
        header, start = safetensors_header(file)
        for name, t in header.items():
            if name == "__metadata__":
                continue
            dtype = t.get("dtype", "F32")
            if dtype not in SAFETENSORS_DTYPES:
                raise TaskError(f"{file}: tensor {name} has dtype {dtype}, which this reader does not read.")
            bits = 8.0 * np.dtype(SAFETENSORS_DTYPES[dtype]).itemsize
            lo, hi = (start + int(x) for x in t["data_offsets"])
            out[name] = (LayerStorage(name, dtype, bits, tuple(t.get("shape", ()))),
                         lambda f=file, lo=lo, hi=hi, d=dtype, s=tuple(t.get("shape", ())): _read(f, lo, hi, d, s))
    return out


def _read(file: Path, lo: int, hi: int, dtype: str, shape: tuple) -> np.ndarray:
    with open(file, "rb") as fh:
        fh.seek(lo)
        raw = np.frombuffer(fh.read(hi - lo), dtype=SAFETENSORS_DTYPES[dtype]).reshape(shape)
    if dtype == "BF16":  # bfloat16: the high half of a float32
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32)


def is_quantized(path: str | Path | None) -> bool:
    """A checkpoint some registered quantized-format reader recognises."""
    return path is not None and open_quantized(path) is not None


def model_tensors(path: str | Path) -> tuple[dict[str, tuple[LayerStorage, Loader]], dict[str, str], object]:
    """(tensors by base parameter name, module types, the quantized reader or None) of any checkpoint."""
    reader = open_quantized(path)
    if reader is not None:
        types = getattr(reader, "module_types", None) or _config_types(Path(path))
        return {s.name: (s, load) for s, load in reader.tensors()}, dict(types), reader
    return float_tensors(path), _config_types(Path(path)), None


def _config_types(path: Path) -> dict[str, str]:
    """Module types of a model directory's architecture, built on the meta device (no weights)."""
    if not (path.is_dir() and (path / "config.json").is_file()):
        return {}
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        if hasattr(config, "quantization_config"):  # the float architecture; no quantizer set up
            del config.quantization_config
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception:  # noqa: BLE001 - types are a label; a model transformers cannot build just lacks them
        return {}
    return {name: type(m).__name__ for name, m in model.named_modules() if name}


def _modules(tensors: dict[str, tuple[LayerStorage, Loader]]) -> dict[str, list[str]]:
    """Parameter names grouped by module, weight before bias (the order a module's parameters have)."""
    groups: dict[str, list[str]] = {}
    for name in tensors:
        groups.setdefault(name.rpartition(".")[0] or name, []).append(name)
    return {m: sorted(names, key=lambda n: (not n.endswith(".weight"), n)) for m, names in groups.items()}


def summarize_weights(path: str | Path, edges: dict[str, np.ndarray], reference: str | Path | None = None) -> dict:
    """{module: summary} of a checkpoint's weights (as `inspection.summarize_all` makes them), plus for
    every module its "storage" type(s) and "bits" per weight and, given a float `reference`
    checkpoint, the error sums "diff_sq", "ref_sq", "own_sq" and "dot". `edges` gains the bins of
    modules that had none."""
    tensors, types, reader = model_tensors(path)
    ref = model_tensors(reference)[0] if reference is not None else None
    out = {}
    for module, names in _modules(tensors).items():
        loaded = [(tensors[n][0], tensors[n][1]()) for n in names]
        count = sum(v.size for _, v in loaded)
        if module not in edges:
            edges[module] = shared_edges([v for _, v in loaded])
        running = RunningSummary(types.get(module, ""), edges[module], sample_positions(module, count))
        for _, values in loaded:
            running.add(values.reshape(-1))
        entry = running.result()
        stored = list(dict.fromkeys(s.storage for s, _ in loaded))
        entry["storage"] = "+".join(stored)
        entry["bits"] = sum(s.bits_per_weight * v.size for s, v in loaded) / max(count, 1)
        if ref is not None:
            entry.update(_error_sums(path, reference, loaded, ref, running.squares))
        out[module] = entry
        del loaded
    if reader is not None and ref is not None:
        missing = sorted(set(ref) - set(tensors))
        if len(missing) == len(ref):
            raise TaskError(f"{path}: none of its tensors maps to a parameter of {reference}.")
    return out


def _error_sums(path, reference, loaded: list[tuple[LayerStorage, np.ndarray]],
                ref: dict[str, tuple[LayerStorage, Loader]], own_sq: float) -> dict:
    """The module's error sums against the reference, in float64 (the float32 values, their
    differences and products are exact there), a cache-sized piece at a time into buffers reused
    piece after piece; einsum, not BLAS, whose threads spin on a busy machine. The model's own
    squares are its summary's (`own_sq`, the same sum)."""
    sums = {"diff_sq": 0.0, "ref_sq": 0.0, "own_sq": own_sq, "dot": 0.0}
    v64, b64, d64 = (np.empty(PIECE) for _ in range(3))
    for storage, values in loaded:
        if storage.name not in ref:
            return {}
        base = ref[storage.name][1]()
        if base.shape != values.shape:
            raise TaskError(f"{path}: tensor {storage.name} has shape {values.shape}, but {reference} has "
                            f"{base.shape}. Fix: this file is not a variant of that base; set its base in a YAML.")
        flat_v, flat_b = values.reshape(-1), base.reshape(-1)
        for s in range(0, flat_v.size, PIECE):
            n = min(PIECE, flat_v.size - s)
            v, b, d = v64[:n], b64[:n], d64[:n]
            v[...], b[...] = flat_v[s:s + n], flat_b[s:s + n]
            np.subtract(v, b, out=d)
            sums["diff_sq"] += float(np.einsum("i,i->", d, d))
            sums["ref_sq"] += float(np.einsum("i,i->", b, b))
            sums["dot"] += float(np.einsum("i,i->", v, b))
        del base
    return sums
