"""Token-level divergence of a model from its reference model, without vocabulary-sized storage.

Per reference token, the reference model's distribution is kept as its top-k log-probabilities,
their token ids and the log of the remaining (tail) mass. A model is compared on k + 1 bins: the
reference's top-k tokens, and everything else pooled into one tail bin. The KL on those bins,

    KL_k = sum_i p_i log(p_i / q_i) + P_tail log(P_tail / Q_tail),

is a lower bound on the exact KL(ref || model) (pooling outcomes never increases a KL divergence:
the log-sum inequality); it is exact when the reference's tail is empty (k >= vocabulary) and the
gap is the KL *within* the tail, weighted by P_tail. docs/generative.md gives the measured error.

This module is numpy only (the UI reads the statistics); precompute gathers the model's
log-probabilities at the reference's top-k ids and its own tail mass on the device, in torch, and
hands over these [T, k] arrays. Statistics follow llama.cpp's `perplexity --kl-divergence`.

"Same top token" (top-1 agreement) counts a token only when the reference and the model each have
ONE most likely token and it is the same token. A tie for the top, in either model, never counts:
a model whose logits are all equal has no top token, so it agrees on 0% of tokens (counting ties
as agreement made such a destroyed model read 100%). A reference agrees with itself wherever its
own top is unique.
"""
from __future__ import annotations

import numpy as np

TOPK = 32
PERCENTILES = (90.0, 95.0, 99.0, 99.9)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """float64 log-probabilities over the last axis."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def topk_summary(logprobs: np.ndarray, k: int = TOPK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top-k log-probs float32 [T, k] in descending order, their ids int32 [T, k], log tail mass
    float32 [T]) of full log-probabilities [T, V]; k is capped at V (the tail is then -inf)."""
    lp = np.asarray(logprobs, dtype=np.float64)
    k = min(k, lp.shape[-1])
    ids = np.argpartition(-lp, k - 1, axis=-1)[..., :k] if k < lp.shape[-1] else np.broadcast_to(
        np.arange(k), lp.shape).copy()
    vals = np.take_along_axis(lp, ids, axis=-1)
    order = np.argsort(-vals, axis=-1, kind="stable")
    ids, vals = np.take_along_axis(ids, order, -1), np.take_along_axis(vals, order, -1)
    return vals.astype(np.float32), ids.astype(np.int32), tail_logmass(lp, ids).astype(np.float32)


def tail_logmass(logprobs: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """log of the probability mass outside `ids` per row, computed from the tail itself (not as
    1 - sum(top-k), which cancels catastrophically when the top-k hold nearly all the mass)."""
    lp = np.array(logprobs, dtype=np.float64, copy=True)
    np.put_along_axis(lp, np.asarray(ids, dtype=np.int64), -np.inf, axis=-1)
    top = lp.max(axis=-1, keepdims=True)
    finite = np.isfinite(top)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(finite, np.log(np.exp(lp - np.where(finite, top, 0)).sum(-1, keepdims=True)) + top, -np.inf)
    return out[..., 0]


def unique_top(topk_values: np.ndarray) -> np.ndarray:
    """bool [T]: the row's highest value is strictly above its second (top-k values [T, k] sorted in
    descending order); a row with k = 1 has no runner-up to tie with."""
    v = np.asarray(topk_values)
    return v[:, 0] > v[:, 1] if v.ndim == 2 and v.shape[1] > 1 else np.ones(len(v), dtype=bool)


def strict_argmax(logprobs: np.ndarray) -> np.ndarray:
    """int64 [T]: the index of each row's one maximum, -1 where the maximum is tied."""
    x = np.asarray(logprobs)
    top = x.max(axis=-1, keepdims=True)
    return np.where((x >= top).sum(-1) == 1, x.argmax(-1), -1)


def same_top(ref_logprobs: np.ndarray, model_logprobs: np.ndarray) -> np.ndarray:
    """bool [T]: "same top token" under the rule above, from full log-probabilities."""
    a, b = strict_argmax(ref_logprobs), strict_argmax(model_logprobs)
    return (a == b) & (a >= 0)


def coarse_kl(ref_topk: np.ndarray, ref_tail: np.ndarray, model_topk: np.ndarray, model_tail: np.ndarray) -> np.ndarray:
    """KL(ref || model) on the k + 1 bins, per token (float64 [T]): `ref_topk` / `model_topk` are
    log-probs [T, k] of the reference's top-k ids under each model, `*_tail` the log tail masses."""
    p_lp, q_lp = np.asarray(ref_topk, np.float64), np.asarray(model_topk, np.float64)
    p_tail, q_tail = np.asarray(ref_tail, np.float64), np.asarray(model_tail, np.float64)
    head = (np.exp(p_lp) * (p_lp - q_lp)).sum(-1)
    with np.errstate(invalid="ignore", over="ignore"):
        tail = np.where(np.isfinite(p_tail), np.exp(p_tail) * (p_tail - q_tail), 0.0)
    return np.maximum(head + tail, 0.0)  # rounding can dip a hair below 0 for identical models


def exact_kl(ref_logprobs: np.ndarray, model_logprobs: np.ndarray) -> np.ndarray:
    """The exact KL(ref || model) per row from full log-probabilities (tests and benchmarks)."""
    p, q = np.asarray(ref_logprobs, np.float64), np.asarray(model_logprobs, np.float64)
    return np.maximum((np.exp(p) * (p - q)).sum(-1), 0.0)


def kl_statistics(kl: np.ndarray, top1: np.ndarray) -> dict[str, float]:
    """llama.cpp-style summary of per-token KL and top-1 agreement: mean (with its standard
    error), median, 90/95/99/99.9th percentiles, max, and "same top token" in percent."""
    kl = np.asarray(kl, dtype=np.float64)
    kl = kl[np.isfinite(kl)]
    top1 = np.asarray(top1, dtype=bool)
    if kl.size == 0:
        return {"tokens": 0}
    stats = {"tokens": int(kl.size), "mean": float(kl.mean()),
             "mean_err": float(kl.std(ddof=1) / np.sqrt(kl.size)) if kl.size > 1 else 0.0,
             "median": float(np.median(kl)), "max": float(kl.max())}
    for q, v in zip(PERCENTILES, np.percentile(kl, PERCENTILES)):
        stats[f"p{q:g}"] = float(v)
    stats["same_top_pct"] = float(100.0 * top1.mean()) if top1.size else float("nan")
    return stats


def per_instance_mean(values: np.ndarray, ntokens: np.ndarray) -> np.ndarray:
    """Mean of a flat per-token array over each instance's tokens (instance i owns
    values[offsets[i]:offsets[i+1]], offsets = cumsum(ntokens)); NaN for an instance without tokens."""
    ntokens = np.asarray(ntokens, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if values.size != ntokens.sum():
        raise ValueError(f"{values.size} per-token values for {int(ntokens.sum())} tokens")
    ends = np.cumsum(ntokens)
    running = np.concatenate([[0.0], np.cumsum(values)])
    sums = running[ends] - running[ends - ntokens]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ntokens > 0, sums / np.maximum(ntokens, 1), np.nan)


def perplexity(nll: np.ndarray, ntokens: np.ndarray) -> float:
    """exp(total NLL / total tokens): the perplexity of the references over a set of instances."""
    total = float(np.sum(ntokens))
    return float(np.exp(np.sum(nll, dtype=np.float64) / total)) if total else float("nan")
