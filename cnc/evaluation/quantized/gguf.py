"""GGUF weights as `QuantizedWeights`: each tensor dequantized on demand by `gguf.quants.dequantize`
and named after the Hugging Face model's parameter, with llama.cpp's converter permutations undone.

The name mapping and the per-architecture fix-ups are transformers' own GGUF loader's
(`get_gguf_hf_weights_map`, `TENSOR_PROCESSORS`: for Llama, the Q/K row permutation
`w.reshape(n, rows // n // 2, 2, cols).swapaxes(1, 2)` with n = heads for Q, KV heads for K),
applied to a model built from the file's config on the meta device (no memory, no weights).
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from cnc.evaluation.quantized.base import LayerStorage, register
from cnc.experiment.errors import ExperimentError, TaskError
from cnc.experiment.gguf_file import GGUFInfo, is_gguf, read_gguf

ROWS_ELEMENTS = 1 << 18  # weights dequantized at a time (1 MB of float32)


class GGUFWeights:
    format = "gguf"

    def __init__(self, path: Path, info: GGUFInfo | None = None):
        self.path = Path(path)
        try:
            self.info = info or read_gguf(self.path)
        except ExperimentError as exc:
            raise TaskError(str(exc)) from None

    def describe(self) -> str:
        return f"GGUF {self.info.file_type}" if self.info.file_type else "GGUF"

    @functools.cached_property
    def _loader(self):
        """(transformers config dict, tensor processor, gguf name -> HF parameter name, module types)."""
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM
        from transformers.modeling_gguf_pytorch_utils import (
            TENSOR_PROCESSORS,
            TensorProcessor,
            get_gguf_hf_weights_map,
            load_gguf_checkpoint,
        )

        try:
            parsed = load_gguf_checkpoint(str(self.path), return_tensors=False)
            config = dict(parsed["config"])
            hf_config = AutoConfig.for_model(**config)
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(hf_config)
        except (ValueError, KeyError, NotImplementedError) as exc:
            raise TaskError(f"{self.path}: transformers cannot map this GGUF's tensors to a Hugging Face "
                            f"model ({type(exc).__name__}: {exc}). Layers needs an architecture transformers' "
                            "GGUF loader supports (llama, mistral, qwen2, gemma2, ...).") from None
        processor = TENSOR_PROCESSORS.get(self.info.architecture, TensorProcessor)(config=config)
        with _one_name_map():
            names = get_gguf_hf_weights_map(model, processor)
        types = {name: type(module).__name__ for name, module in model.named_modules() if name}
        return config, processor, names, types

    @property
    def module_types(self) -> dict[str, str]:
        """Module name -> class name of the Hugging Face model this file maps to."""
        return self._loader[3]

    @property
    def vocab_size(self) -> int:
        return self.info.vocab_size

    def tensors(self) -> Iterator[tuple[LayerStorage, Callable[[], np.ndarray]]]:
        from gguf import GGUFReader

        _config, processor, names, _types = self._loader
        reader = GGUFReader(self.path)
        by_name = {t.name: t for t in self.info.tensors}
        for tensor in reader.tensors:
            hf = names.get(tensor.name)
            if hf is None:  # e.g. rope_freqs: computed, not a parameter of the HF model
                continue
            info = by_name[tensor.name]
            storage = LayerStorage(hf, info.storage, info.bits_per_weight, info.shape)
            yield storage, functools.partial(_dequantized, self.path, tensor, processor)


@contextlib.contextmanager
def _one_name_map():
    """transformers' `get_gguf_hf_weights_map` builds gguf's TensorNameMap (every name of every
    block, formatted) again for each submodule it visits: ~300 times, 6-8 s of CPU for a 22-layer
    model. The same map, built once, while it runs (gguf's function is looked up at each call)."""
    import gguf

    original = gguf.get_tensor_name_map
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=4)(original)
    try:
        yield
    finally:
        gguf.get_tensor_name_map = original


def _dequantized(path: Path, tensor, processor) -> np.ndarray:
    """One tensor dequantized, its bytes read with a plain file read (the reader's memory map would
    keep every page touched in the process, a whole 1B model's worth by the end)."""
    with open(path, "rb") as fh:
        fh.seek(int(tensor.data_offset))
        raw = np.frombuffer(fh.read(int(tensor.n_bytes)), dtype=tensor.data.dtype).reshape(tensor.data.shape)
    values = dequantize(raw, tensor.tensor_type).astype(np.float32, copy=False)
    return np.ascontiguousarray(processor.process(weights=values, name=tensor.name).weights, dtype=np.float32)


def dequantize(raw: np.ndarray, qtype) -> np.ndarray:
    """`gguf.quants.dequantize`, bit for bit, with its own per-type `dequantize_rows` applied a
    cache-sized run of rows at a time straight into the output: gguf keeps every 16-row group's
    result in a list, then concatenates (a second full-size copy), which made a 1B model's
    dequantization 2-4x slower (Q8_0 4.4 -> 1.3 ns, Q4_K 11 -> 3.2 ns per weight)."""
    import gguf.quants

    kind = getattr(gguf.quants, qtype.name, None)
    if kind is None or not hasattr(kind, "dequantize_rows"):  # F32, F16, BF16, ...: gguf's own path
        return gguf.quants.dequantize(raw, qtype)
    kind.init_grid()  # the IQ types' lookup grids
    rows = raw.reshape(-1, raw.shape[-1])
    width = rows.shape[1] // kind.type_size * kind.block_size
    out = np.empty((rows.shape[0], width), np.float32)
    step = max(1, ROWS_ELEMENTS // width)
    for start in range(0, rows.shape[0], step):
        out[start:start + step] = kind.dequantize_rows(rows[start:start + step])
    return out.reshape(*raw.shape[:-1], width)


def open_gguf(path: Path) -> GGUFWeights | None:
    """The reader for a GGUF file (by its magic bytes), else None."""
    if not Path(path).is_file() or not is_gguf(path):
        return None
    return GGUFWeights(path)


register("gguf", open_gguf)
