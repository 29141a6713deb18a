"""Which kernels produced a GGUF model's outputs, as the views say it: llama.cpp's own (the real
quantized arithmetic) or transformers' float kernels on dequantized weights. Precompute records
it with the outputs ("runtime"); outputs stored before it did came from transformers."""
from __future__ import annotations

from typing import Mapping

FLOAT = "transformers, dequantized to float"


def is_gguf_path(checkpoint: object) -> bool:
    return checkpoint is not None and str(checkpoint).lower().endswith(".gguf")


def runtime_of(outputs: Mapping | None, checkpoint: object) -> str | None:
    """The runtime label of a model's stored outputs (None: not a GGUF, or no outputs yet)."""
    if not outputs:
        return None
    return outputs.get("runtime") or (FLOAT if is_gguf_path(checkpoint) else None)


def runtime_notes(runtimes: Mapping[str, str | None]) -> list[str]:
    """One line per runtime that ran GGUF models ({model id: label}), models in the given order."""
    by_label: dict[str, list[str]] = {}
    for model_id, label in runtimes.items():
        if label:
            by_label.setdefault(label, []).append(model_id)
    notes = []
    for label, ids in by_label.items():
        what = ("the real quantized arithmetic" if label.startswith("llama.cpp")
                else "float kernels, not llama.cpp's quantized kernels: pip install -r requirements-llamacpp.txt "
                     "to run those")
        notes.append(f"{', '.join(ids)}: run through {label} ({what}); every model got the base tokenizer's token ids.")
    return notes
