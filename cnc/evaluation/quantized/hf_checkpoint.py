"""What every quantized Hugging Face checkpoint reader shares: the directory's safetensors files
read one tensor at a time (shards found through `model.safetensors.index.json` or by listing), so
a reader never holds more than the tensors of the layer it is dequantizing; the walk over the
file's tensors (quantized layers, float ones, the recipe's ignored ones); dense bit unpacking."""
from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from cnc.evaluation.quantized.base import LayerStorage
from cnc.experiment.errors import TaskError
from cnc.experiment.hf_quantization import HFQuantization

DTYPE_BITS = {"F64": 64, "F32": 32, "BF16": 16, "F16": 16, "F8_E4M3": 8, "F8_E5M2": 8, "I64": 64, "I32": 32,
              "I16": 16, "I8": 8, "U8": 8, "BOOL": 8}
FLOAT_DTYPES = ("F64", "F32", "BF16", "F16")


class CheckpointFiles:
    """Tensor names, shapes and dtypes of a model directory's safetensors files, and each tensor on demand."""

    def __init__(self, model_dir: Path):
        from safetensors import SafetensorError, safe_open

        self.dir = model_dir
        self._where: dict[str, Path] = {}
        self._meta: dict[str, tuple[str, tuple[int, ...]]] = {}
        files = sorted(model_dir.glob("*.safetensors"))
        if not files:
            raise TaskError(f"{model_dir}: no *.safetensors weights (only safetensors are read, never pickles).")
        for file in self._shards(files):
            try:
                with safe_open(str(file), framework="pt") as handle:
                    for name in handle.keys():
                        piece = handle.get_slice(name)
                        self._where[name] = file
                        self._meta[name] = (piece.get_dtype(), tuple(piece.get_shape()))
            except (SafetensorError, OSError) as exc:
                raise TaskError(f"{file}: cannot read safetensors ({exc}); the file is damaged or incomplete.") \
                    from None

    def _shards(self, files: list[Path]) -> list[Path]:
        """The files the index names when there is one (a directory may also hold stray copies)."""
        index = self.dir / "model.safetensors.index.json"
        if not index.is_file():
            return files
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise TaskError(f"{index}: not a safetensors index with a weight_map ({exc}).") from None
        missing = [n for n in names if not (self.dir / n).is_file()]
        if missing:
            raise TaskError(f"{index}: names shard(s) {', '.join(missing[:3])} that are not in {self.dir}.")
        return [self.dir / n for n in names]

    def names(self) -> list[str]:
        return list(self._meta)

    def __contains__(self, name: str) -> bool:
        return name in self._meta

    def dtype(self, name: str) -> str:
        return self._meta[name][0]

    def shape(self, name: str) -> tuple[int, ...]:
        return self._meta[name][1]

    def bits(self, name: str) -> int:
        """Bits the file spends on tensor `name`."""
        count = 1
        for n in self.shape(name):
            count *= n
        return count * DTYPE_BITS.get(self.dtype(name), 32)

    def get(self, name: str) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(str(self._where[name]), framework="pt") as handle:
            return handle.get_tensor(name)


# activation and KV-cache quantization parameters: not weights of the base model
NOT_WEIGHTS = ("input_scale", "input_zero_point", "input_global_scale", "output_scale", "output_zero_point",
               "k_scale", "v_scale", "weight_global_scale")


class HFQuantizedWeights:
    """`QuantizedWeights` of a model directory whose config.json has a quantization_config. A
    subclass names the tensors that store one quantized layer (`PARTS`, the first marks such a
    layer) and dequantizes a layer from them."""

    format = ""
    PARTS: tuple[str, ...] = ()

    def __init__(self, path: Path, quant: HFQuantization):
        self.path, self.quant = path, quant
        self.files = CheckpointFiles(path)

    def describe(self) -> str:
        return self.quant.describe()

    def tensors(self) -> Iterator[tuple[LayerStorage, Callable[[], np.ndarray]]]:
        marker = "." + self.PARTS[0]
        quantized = {n[: -len(marker)] for n in self.files.names() if n.endswith(marker)}
        for name in sorted(self.files.names(), key=_natural):
            module, _, leaf = name.rpartition(".")
            if module in quantized and leaf in self.PARTS:
                if leaf == self.PARTS[0]:
                    yield self.layer(module)
            elif leaf not in NOT_WEIGHTS and self.files.dtype(name) in FLOAT_DTYPES:
                yield self.float_tensor(name)

    def layer(self, module: str) -> tuple[LayerStorage, Callable[[], np.ndarray]]:
        """A quantized layer's storage (bits counted from the file: values, scales, zero points,
        group indices) and its dequantization."""
        group = self.quant.scheme_for(module)
        if group is None:
            raise TaskError(f"{self.quant.source}: quantization_config has no group whose targets cover "
                            f"{module} (stored quantized in {self.path}).")
        shape = self.weight_shape(module)
        stored = sum(self.files.bits(f"{module}.{p}") for p in self.PARTS if f"{module}.{p}" in self.files
                     and not p.endswith("_shape"))
        count = int(np.prod(shape))
        storage = LayerStorage(f"{module}.weight", group.weights.storage, stored / count, shape,
                               {**group.weights.as_dict(), "format": group.format, "ignored": False})
        return storage, functools.partial(self._checked, module, shape)

    def float_tensor(self, name: str) -> tuple[LayerStorage, Callable[[], np.ndarray]]:
        dtype, module = self.files.dtype(name), name.rpartition(".")[0]
        ignored = self.quant.is_ignored(module)
        storage = LayerStorage(name, f"{dtype} (ignored)" if ignored else dtype, float(DTYPE_BITS[dtype]),
                               self.files.shape(name), {"ignored": ignored})
        return storage, lambda: self.files.get(name).float().numpy()

    def _checked(self, module: str, shape: tuple[int, ...]) -> np.ndarray:
        try:
            weight = self.dequantize(module)
        except (RuntimeError, IndexError, ValueError) as exc:
            raise TaskError(f"{self.path}: the stored tensors of {module} do not fit its scheme ({exc}).") from None
        if tuple(weight.shape) != shape:
            raise TaskError(f"{self.path}: {module} dequantizes to shape {tuple(weight.shape)}, expected {shape}.")
        return np.ascontiguousarray(weight, dtype=np.float32)

    def array(self, name: str) -> np.ndarray:
        """A stored tensor as float32 numpy (bfloat16 / float8 go through torch, numpy has no such types)."""
        return self.files.get(name).float().numpy()

    def weight_shape(self, module: str) -> tuple[int, ...]:
        raise NotImplementedError

    def dequantize(self, module: str) -> np.ndarray:
        """The layer's float32 weight [out, in], as the base model's Linear holds it."""
        raise NotImplementedError


def unpack_bits(packed: torch.Tensor, bits: int, count: int) -> np.ndarray:
    """Unsigned `bits`-bit values packed densely, least significant bits first, along the last
    dimension of an int32 tensor (value j starts at bit j*bits of the row's words, and may cross
    into the next word): the first `count` values of each row, as float32 (exact: at most 255),
    ready for dequantization arithmetic (numpy: on a busy CPU several times torch's speed here)."""
    if bits in (4, 8) and sys.byteorder == "little":  # whole bytes or nibbles: no shifting of words
        raw = packed.contiguous().numpy().view(np.uint8)
        if bits == 8:
            return raw[..., :count].astype(np.float32)
        out = np.empty((*raw.shape[:-1], raw.shape[-1] * 2), dtype=np.float32)
        out[..., 0::2] = raw & 0xF
        out[..., 1::2] = raw >> 4
        return out[..., :count]
    words = packed.numpy().astype(np.int64) & 0xFFFFFFFF
    words = np.pad(words, [(0, 0)] * (words.ndim - 1) + [(0, 1)])  # a value may read into the next word
    start = np.arange(count, dtype=np.int64) * bits
    index, offset = start // 32, start % 32
    values = (words[..., index] >> offset) | (words[..., index + 1] << (32 - offset))
    return (values & ((1 << bits) - 1)).astype(np.float32)


def _natural(name: str) -> list:
    """layers.2 before layers.10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
