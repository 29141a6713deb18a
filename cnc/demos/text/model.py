"""The text demo's model: a small decoder-only transformer with pre-LayerNorm blocks.

Module names are plain attributes (`tok_emb`, `blocks.0.ln1`, `blocks.0.attn.q`, ...,
`ln_f`, `head`) and every compressed variant keeps them, so layers line up across models in the
Layers view. `forward(input_ids, attention_mask=None)` returns logits [B, T, V]. With a mask
(left padding for batched generation), positions count real tokens only and padding is never
attended to, so a padded row computes exactly what it would alone. Positions enter through
rotary embeddings (as in most current LMs): attention sees relative offsets, which the tiny model
learns much faster than absolute position embeddings. The LayerNorms have gains but no biases
(as T5's and LLaMA's norms): a norm whose gain is zeroed passes nothing on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

D_MODEL = 64
HEADS = 4
LAYERS = 2
D_FF = 256
MAX_LEN = 96
EMBEDDING_STD = 0.1  # larger than the linear layers' 0.05, as embeddings are in most LMs
LINEAR_STD = 0.05


class Attention(nn.Module):
    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, rot: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (proj(x).view(b, t, self.heads, d // self.heads).transpose(1, 2) for proj in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(_rotate(q, *rot), _rotate(k, *rot), v, attn_mask=mask)
        return self.o(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int, d_ff: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model, bias=False)
        self.attn = Attention(d_model, heads)
        self.ln2 = nn.LayerNorm(d_model, bias=False)
        self.mlp = MLP(d_model, d_ff)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, rot: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask, rot)
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    def __init__(self, vocab_size: int, d_model: int = D_MODEL, heads: int = HEADS, layers: int = LAYERS,
                 d_ff: int = D_FF, max_len: int = MAX_LEN) -> None:
        super().__init__()
        self.max_len = max_len
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads, d_ff) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model, bias=False)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.apply(_init)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t = input_ids.shape
        if t > self.max_len:
            raise ValueError(f"sequence of {t} tokens is longer than the model's {self.max_len}")
        causal = torch.ones(t, t, dtype=torch.bool, device=input_ids.device).tril()
        if attention_mask is None:
            pos = torch.arange(t, device=input_ids.device).expand(b, t)
            mask = causal.expand(b, 1, t, t)
        else:
            keep = attention_mask.bool()
            pos = (keep.long().cumsum(1) - 1).clamp(min=0)
            # a query sees earlier real tokens, and always itself (a padding row would otherwise see nothing)
            mask = (causal & keep[:, None, :]) | torch.eye(t, dtype=torch.bool, device=input_ids.device)
            mask = mask[:, None]
        rot = _rotary(pos, self.blocks[0].attn.q.out_features // self.blocks[0].attn.heads)
        x = self.tok_emb(input_ids)
        for block in self.blocks:
            x = block(x, mask, rot)
        return self.head(self.ln_f(x))


def _rotary(pos: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [B, 1, T, dim/2] of rotary position embeddings (attention sees relative offsets)."""
    freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, device=pos.device, dtype=torch.float32) / dim))
    angle = pos[:, None, :, None].float() * freq
    return angle.cos(), angle.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=EMBEDDING_STD if isinstance(module, nn.Embedding) else LINEAR_STD)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def build_model(vocab_size: int) -> TinyLM:
    return TinyLM(vocab_size)
