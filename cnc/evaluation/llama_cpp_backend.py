"""A GGUF model run by llama.cpp's own kernels (llama-cpp-python): the quantized arithmetic a user
ships, where transformers would dequantize the weights and run float kernels.

`LlamaCppModel` stands where a torch model would in the generative precompute: `HFTask` hands
its `generate` / `reference_logits` / `generate_and_reference` calls over, with the token ids of
the task's own (the base's) tokenizer, so every model of the tree reads the same ids (llama.cpp's
tokenizer would add BOS where the Hugging Face one may not). Decoding is greedy (argmax of the
logits, as the transformers path); teacher forcing reads the logits llama.cpp computes for every
position (`logits_all=True`) and returns them as the same [B, T, V] tensors, so NLL, KL and top-1
come from the one `token_logprobs` code. One sequence at a time, on the CPU; no activations (its
layers are not torch modules), its Layers come from the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from cnc.evaluation.gguf_runtime import llama_cpp_label
from cnc.experiment.errors import TaskError

MIN_CONTEXT = 256


@dataclass
class LlamaCppModel:
    """A GGUF file and the llama.cpp context that runs it, opened on first use and reopened larger
    when a prompt needs more positions than it has."""

    path: Path
    eos_ids: frozenset[int]
    vocab_size: int
    threads: int = field(default_factory=torch.get_num_threads)
    cnc_runtime: str = field(default_factory=llama_cpp_label)
    _llm: Any = field(default=None, repr=False)

    # precompute treats a model as a torch module this far: it runs where llama.cpp runs (the CPU)
    def to(self, _device: Any) -> "LlamaCppModel":
        return self

    def eval(self) -> "LlamaCppModel":
        return self

    def _context(self, positions: int) -> Any:
        if self._llm is not None and self._llm.n_ctx() >= positions:
            return self._llm
        try:
            import llama_cpp
        except (ImportError, OSError, RuntimeError) as exc:  # installed without its shared library
            raise TaskError(f"{self.path}: llama-cpp-python is installed but cannot load llama.cpp ({exc}); "
                            "reinstall it (pip install -r requirements-llamacpp.txt) or set "
                            "CNC_GGUF_RUNTIME=transformers.") from None
        self.close()
        n_ctx = max(MIN_CONTEXT, 1 << (positions - 1).bit_length())
        try:
            self._llm = llama_cpp.Llama(str(self.path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
                                        logits_all=True, n_threads=self.threads, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise TaskError(f"{self.path}: llama.cpp cannot load this GGUF ({exc}).") from None
        if self._llm.n_vocab() != self.vocab_size:
            raise TaskError(f"{self.path}: llama.cpp reads {self._llm.n_vocab()} tokens, the base has "
                            f"{self.vocab_size}; its outputs, NLL and KL are not comparable.")
        return self._llm

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def run(self, prompt: Sequence[int], reference: Sequence[int] | None, max_new_tokens: int,
            ) -> tuple[list[int], np.ndarray | None]:
        """Greedy new token ids after `prompt` (up to an end-of-sequence token) and, given a
        `reference`, the logits float32 [len(reference), V] predicting each of its tokens, from the
        same prompt evaluation (the cache is cut back to the prompt before the reference is fed)."""
        prompt = [int(t) for t in prompt]
        if not prompt:
            raise TaskError(f"{self.path}: a prompt encodes to no tokens; llama.cpp needs at least one.")
        reference = [int(t) for t in reference] if reference is not None else None
        llm = self._context(len(prompt) + max(max_new_tokens, len(reference or ())))
        llm.reset()
        llm.eval(prompt)
        first = np.array(llm.scores[len(prompt) - 1], dtype=np.float32)
        new: list[int] = []
        logits = first
        for step in range(max_new_tokens):
            token = int(np.argmax(logits))
            if token in self.eos_ids:
                break
            new.append(token)
            if step + 1 < max_new_tokens:
                llm.eval([token])
                logits = llm.scores[llm.n_tokens - 1]
        if reference is None:
            return new, None
        llm.n_tokens = len(prompt)  # the next eval drops the generated tokens' keys and values
        if len(reference) > 1:
            llm.eval(reference[:-1])
        rows = np.asarray(llm.scores[len(prompt):len(prompt) + len(reference) - 1], dtype=np.float32)
        return new, np.concatenate([first[None], rows])[:len(reference)]


def generate(model: LlamaCppModel, prompt_ids: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    return [model.run(p, None, max_new_tokens)[0] for p in prompt_ids]


def generate_and_reference(model: LlamaCppModel, prompt_ids: list[list[int]], ref_ids: list[list[int]],
                           max_new_tokens: int) -> tuple[list[list[int]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """New token ids per prompt and the teacher-forced (logits [B, T, V], targets [B, T], mask [B, T])."""
    runs = [model.run(p, r, max_new_tokens) for p, r in zip(prompt_ids, ref_ids)]
    return [new for new, _ in runs], _padded([forced for _, forced in runs], ref_ids, model.vocab_size)


def reference_logits(model: LlamaCppModel, prompt_ids: list[list[int]], ref_ids: list[list[int]],
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return generate_and_reference(model, prompt_ids, ref_ids, 0)[1]


def _padded(forced: list[np.ndarray], ref_ids: list[list[int]], vocab: int):
    width = max((len(r) for r in ref_ids), default=0)
    logits = torch.zeros((len(ref_ids), width, vocab), dtype=torch.float32)
    targets = torch.zeros((len(ref_ids), width), dtype=torch.long)
    mask = torch.zeros((len(ref_ids), width), dtype=torch.bool)
    for i, (rows, ref) in enumerate(zip(forced, ref_ids)):
        n = len(ref)
        if n:
            logits[i, :n] = torch.from_numpy(rows)
            targets[i, :n] = torch.tensor(ref, dtype=torch.long)
            mask[i, :n] = True
    return logits, targets, mask
