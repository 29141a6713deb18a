"""Weights stored in a quantized format (GGUF files, compressed-tensors / GPTQ / AWQ checkpoints),
read tensor by tensor and dequantized on demand, named after the base model's parameters.

One module per format implements `QuantizedWeights` (see `base.py`) and registers an opener with
`register`; `open_quantized(path)` asks each opener in turn. Precompute summarizes such a model
tensor by tensor, so peak memory stays near one dequantized tensor.
"""
from cnc.evaluation.quantized import compressed_tensors, gptq_awq  # noqa: E402,F401  (register their openers)
from cnc.evaluation.quantized.base import LayerStorage, QuantizedWeights, open_quantized, register

__all__ = ["LayerStorage", "QuantizedWeights", "open_quantized", "register"]
