"""GPTQ and AWQ checkpoints (GPTQModel / AutoGPTQ, AutoAWQ, AutoRound's exports), read tensor by
tensor and dequantized with torch.

GPTQ: `qweight` [in * bits / 32, out] packs the values down the input dimension, `qzeros`
[groups, out * bits / 32] across outputs (format "gptq" stores zero - 1, "gptq_v2" the zero),
`scales` [groups, out], `g_idx` [in] each input's group (activation order). AWQ ("gemm"):
`qweight` [in, out / 8] and `qzeros` pack 8 outputs per word in AWQ's interleaved order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cnc.evaluation.quantized.base import register
from cnc.evaluation.quantized.hf_checkpoint import HFQuantizedWeights, unpack_bits
from cnc.experiment.errors import TaskError
from cnc.experiment.hf_quantization import HFQuantization, read_quantization

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # output j of 8 is stored at position AWQ_ORDER.index(j)


class GPTQWeights(HFQuantizedWeights):
    format = "gptq"
    PARTS = ("qweight", "qzeros", "scales", "g_idx")

    def weight_shape(self, module: str) -> tuple[int, ...]:
        """[out, in]: outputs from the scales, inputs from g_idx (or the packed rows)."""
        outputs = self.files.shape(f"{module}.scales")[1]
        if f"{module}.g_idx" in self.files:
            return outputs, self.files.shape(f"{module}.g_idx")[0]
        return outputs, self.files.shape(f"{module}.qweight")[0] * 32 // self.bits

    @property
    def bits(self) -> int:
        return self.quant.groups[0].weights.bits

    def dequantize(self, module: str) -> np.ndarray:
        out, inputs = self.weight_shape(module)
        values = unpack_bits(self.files.get(f"{module}.qweight").T.contiguous(), self.bits, inputs)  # [out, in]
        zeros = unpack_bits(self.files.get(f"{module}.qzeros"), self.bits, out)  # [groups, out]
        if self.quant.extra.get("checkpoint_format", "gptq") == "gptq":
            zeros += 1
        scales = self.array(f"{module}.scales")
        if f"{module}.g_idx" in self.files:
            g_idx = self.files.get(f"{module}.g_idx").long().numpy()
        else:
            g_idx = np.arange(inputs) // (self.quant.groups[0].weights.group_size or inputs)
        return (values - zeros.T[:, g_idx]) * scales.T[:, g_idx]


class AWQWeights(HFQuantizedWeights):
    format = "awq"
    PARTS = ("qweight", "qzeros", "scales")

    def weight_shape(self, module: str) -> tuple[int, ...]:
        return self.files.shape(f"{module}.scales")[1], self.files.shape(f"{module}.qweight")[0]

    def dequantize(self, module: str) -> np.ndarray:
        out, inputs = self.weight_shape(module)
        order = np.array([AWQ_ORDER.index(j) for j in range(8)])
        unshuffle = (np.arange(out).reshape(-1, 8) // 8 * 8 + order).reshape(-1)
        values = unpack_bits(self.files.get(f"{module}.qweight"), 4, out)[:, unshuffle]  # [in, out]
        zeros = unpack_bits(self.files.get(f"{module}.qzeros"), 4, out)[:, unshuffle]  # [groups, out]
        scales = self.array(f"{module}.scales")
        group = np.arange(inputs) // (self.quant.groups[0].weights.group_size or inputs)
        return ((values - zeros[group]) * scales[group]).T


def _readable(quant: HFQuantization) -> HFQuantization:
    """The quantization, if its packing is one cnc reads (else a TaskError naming the field)."""
    bits = quant.groups[0].weights.bits
    if quant.method == "awq":
        if quant.extra.get("version") != "gemm":
            raise TaskError(f"{quant.source}: quantization_config.version is {quant.extra.get('version')!r}; cnc "
                            "reads AWQ's gemm layout only (gemv / exllama / ipex packings are not read).")
        if bits != 4:
            raise TaskError(f"{quant.source}: quantization_config.bits is {bits}; AWQ checkpoints are 4-bit.")
    elif bits not in (2, 4, 8):
        raise TaskError(f"{quant.source}: quantization_config.bits is {bits}; cnc reads GPTQ with 2, 4 or 8 bits.")
    if quant.method == "gptq" and quant.extra.get("checkpoint_format") not in ("gptq", "gptq_v2"):
        raise TaskError(f"{quant.source}: quantization_config.checkpoint_format is "
                        f"{quant.extra.get('checkpoint_format')!r}; cnc reads gptq and gptq_v2 (not marlin, ...).")
    return quant


def open_gptq_awq(path: Path) -> GPTQWeights | AWQWeights | None:
    if not path.is_dir():
        return None
    quant = read_quantization(path)
    if quant is None or quant.method not in ("gptq", "awq"):
        return None
    return (GPTQWeights if quant.method == "gptq" else AWQWeights)(path, _readable(quant))


register("gptq-awq", open_gptq_awq)
