"""The text demo's task (`cnc.demos.text.task:TextQATask`): a generative task over the test split.

It implements the generative task protocol (docs/generative.md): prompts and reference answers,
greedy batched generation, and the teacher-forced logits of the references. The functions below
the class take a model and a tokenizer, so the build measures with exactly what the app runs.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnc.demos.text.data import QAExample, WordTokenizer, attributes, load_examples, tokenizer
from cnc.demos.text.model import build_model
from cnc.toolkit.lm_compress import load_checkpoint

MAX_NEW_TOKENS = 8


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def left_padded(tok: WordTokenizer, prompts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [B, T] with prompts right-aligned, and the mask of real tokens."""
    encoded = [tok.encode(p) for p in prompts]
    width = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), width), tok.pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, e in enumerate(encoded):
        ids[i, width - len(e):] = torch.tensor(e, dtype=torch.long)
        mask[i, width - len(e):] = 1
    return ids.to(device), mask.to(device)


def greedy_generate(model: nn.Module, tok: WordTokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy continuations (text after the prompt, up to the end token), one batch.

    No key/value cache: prompts are short and the whole sequence is recomputed per new token."""
    if not prompts:
        return []
    ids, mask = left_padded(tok, prompts, _device(model))
    done = torch.zeros(len(prompts), dtype=torch.bool, device=ids.device)
    new: list[torch.Tensor] = []
    for _ in range(max(0, min(max_new_tokens, model.max_len - ids.shape[1]))):
        nxt = model(ids, mask)[:, -1].argmax(dim=-1)
        nxt = torch.where(done, torch.full_like(nxt, tok.eos_id), nxt)
        new.append(nxt)
        done |= nxt == tok.eos_id
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(nxt)[:, None]], dim=1)
        if bool(done.all()):
            break
    if not new:
        return [""] * len(prompts)
    return [tok.decode(row) for row in torch.stack(new, dim=1).tolist()]


def teacher_forced(model: nn.Module, tok: WordTokenizer, prompts: list[str],
                   references: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits [B, R, V], targets [B, R], mask [B, R]) for each reference's tokens and end token.

    One pass over prompt + reference + end (right-padded); row i's logits are those at the
    positions that predict its reference tokens, so NLL counts whether the model would stop."""
    pairs = [(tok.encode(p), tok.encode(r) + [tok.eos_id]) for p, r in zip(prompts, references, strict=True)]
    width = max(len(p) + len(r) for p, r in pairs)
    ref_len = max(len(r) for _, r in pairs)
    device = _device(model)
    ids = torch.full((len(pairs), width), tok.pad_id, dtype=torch.long)
    attn = torch.zeros((len(pairs), width), dtype=torch.long)
    gather = torch.zeros((len(pairs), ref_len), dtype=torch.long)
    targets = torch.zeros((len(pairs), ref_len), dtype=torch.long)
    mask = torch.zeros((len(pairs), ref_len), dtype=torch.bool)
    for i, (p, r) in enumerate(pairs):
        seq = p + r
        ids[i, :len(seq)] = torch.tensor(seq)
        attn[i, :len(seq)] = 1
        gather[i, :len(r)] = torch.arange(len(p) - 1, len(p) - 1 + len(r))
        targets[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = True
    logits = model(ids.to(device), attn.to(device))
    picked = torch.gather(logits, 1, gather.to(device)[..., None].expand(-1, -1, logits.shape[-1]))
    return picked.float(), targets.to(device), mask.to(device)


class TextQATask:
    """Generative task protocol for the text demo; `seed` must match the build's seed."""

    kind = "generative"
    generation = {"max_new_tokens": MAX_NEW_TOKENS, "stop": []}

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.tokenizer = tokenizer()

    @property
    def _test(self) -> tuple[QAExample, ...]:
        return load_examples("test", self.seed)

    def load_model(self, checkpoint: str | Path) -> nn.Module:
        """Float, pruned or weight-quantized checkpoint -> TinyLM in eval mode (weights_only=True)."""
        return load_checkpoint(build_model(len(self.tokenizer)), checkpoint).eval()

    def eval_data(self) -> tuple[list[str], list[list[str]]]:
        test = self._test
        return [ex.prompt for ex in test], [[ex.answer] for ex in test]

    def generate(self, model: nn.Module, prompts: list[str], max_new_tokens: int) -> list[str]:
        return greedy_generate(model, self.tokenizer, prompts, max_new_tokens)

    def reference_logits(self, model: nn.Module, prompts: list[str],
                         references: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return teacher_forced(model, self.tokenizer, prompts, references)

    def attributes(self) -> dict[str, list[str]]:
        return attributes(self._test)

    def render_instance(self, index: int) -> dict:
        return {"kind": "text", "text": self._test[index].prompt}
