"""compressed-tensors checkpoints (llm-compressor, neural-compressor; what vLLM serves), read
tensor by tensor and dequantized with torch, independently of the compressed-tensors package.

Formats: pack-quantized (int values packed densely into int32 words, offset to unsigned),
int-quantized / naive-quantized (int8 values), float-quantized (fp8 values), dense (stored already
dequantized). Strategies: tensor, channel, group (with the `weight_g_idx` of activation ordering),
block. Not read: sparse, NVFP4 / MX formats (the config names them, `hf_quantization` says so).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cnc.evaluation.quantized.base import register
from cnc.evaluation.quantized.hf_checkpoint import HFQuantizedWeights, unpack_bits
from cnc.experiment.errors import TaskError
from cnc.experiment.hf_quantization import WeightScheme, read_quantization


class CompressedTensorsWeights(HFQuantizedWeights):
    """A compressed-tensors model directory's weights, named as in the float model."""

    format = "compressed-tensors"
    # a quantized layer is marked by its scale; its values are `weight` or `weight_packed`
    PARTS = ("weight_scale", "weight", "weight_packed", "weight_zero_point", "weight_g_idx", "weight_shape")

    def weight_shape(self, module: str) -> tuple[int, ...]:
        if f"{module}.weight_packed" in self.files:
            return tuple(int(v) for v in self.files.get(f"{module}.weight_shape").tolist())
        if f"{module}.weight" not in self.files:
            raise TaskError(f"{self.path}: {module} has a weight_scale but neither weight nor weight_packed.")
        return self.files.shape(f"{module}.weight")

    def dequantize(self, module: str) -> np.ndarray:
        scheme = self.quant.scheme_for(module).weights
        shape = self.weight_shape(module)
        scale = self.array(f"{module}.weight_scale")
        zero = self._zero_point(module, scheme, shape)
        if f"{module}.weight_packed" in self.files:
            values = unpack_bits(self.files.get(f"{module}.weight_packed"), scheme.bits, shape[-1])
            values -= 1 << (scheme.bits - 1)
        else:
            stored = self.files.get(f"{module}.weight")
            values = stored.float().numpy()
            if stored.is_floating_point() and stored.element_size() > 1:  # "dense": stored dequantized
                return values
        g_idx = self.files.get(f"{module}.weight_g_idx").long().numpy() if f"{module}.weight_g_idx" in self.files \
            else None
        return dequantize(values, scale, zero, scheme, g_idx)

    def _zero_point(self, module: str, scheme: WeightScheme, shape: tuple[int, ...]) -> np.ndarray | None:
        name = f"{module}.weight_zero_point"
        if scheme.symmetric or name not in self.files:
            return None
        zero = self.files.get(name)
        if f"{module}.weight_packed" in self.files and scheme.strategy in ("group", "channel"):
            # packed like the values but down the rows: [rows * bits / 32, groups]
            return unpack_bits(zero.T.contiguous(), scheme.bits, shape[0]).T - (1 << (scheme.bits - 1))
        return zero.float().numpy()


def dequantize(values: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, scheme: WeightScheme,
               g_idx: np.ndarray | None = None) -> np.ndarray:
    """(values - zero) * scale, with the scale (and zero point) of each value's tensor, row, group or block."""
    rows, cols = values.shape
    if scheme.strategy == "group" and g_idx is None and cols % scheme.group_size == 0:  # the usual case, no copies
        grouped = values.reshape(rows, -1, scheme.group_size)
        if zero is not None:
            grouped = grouped - zero[:, :, None]
        return (grouped * scale[:, :, None]).reshape(rows, cols)

    def spread(t: np.ndarray) -> np.ndarray:
        if scheme.strategy == "group":
            if g_idx is not None:
                return t[:, g_idx]
            return np.repeat(t, scheme.group_size, axis=1)[:, :cols]
        if scheme.strategy == "block":
            br, bc = scheme.block
            return np.repeat(np.repeat(t, br, axis=0), bc, axis=1)[:rows, :cols]
        return t.reshape(-1, 1) if scheme.strategy == "channel" else t.reshape(())

    shifted = values if zero is None else values - spread(zero)
    return shifted * spread(scale)


def open_compressed_tensors(path: Path) -> CompressedTensorsWeights | None:
    if not path.is_dir():
        return None
    quant = read_quantization(path)
    if quant is None or quant.method != "compressed-tensors":
        return None
    return CompressedTensorsWeights(path, quant)


register("compressed-tensors", open_compressed_tensors)
