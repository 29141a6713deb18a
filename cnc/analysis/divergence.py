"""Per-instance MSE and KL divergence of models' output probabilities against a base.

They need every compared model's full probabilities ([N, C] float16, memory-mapped from the store),
so they are the one Behaviors computation that reads the big files. It is done once per
(base, model) pair: precompute stores each model's divergences against its tree's root, and a
pair computed on first use is stored too (`PairCache`), so a selection whose pairs are known opens
its MSE / KL view by reading 8 bytes per instance and model.

Definitions (see cnc.analysis.behavior_table): MSE = mean over classes of (p_m − p_b)²; KL(base ‖
model) = Σ_c p_b · (log max(p_b, EPS) − log max(p_m, EPS)), both in float32 from the stored float16
values, so identical outputs give exactly 0.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, Sequence

import numpy as np

EPS = 1e-7  # probabilities are clipped below at EPS inside logs
ROWS = 128  # rows per step: a step's float32 temporaries (ROWS x C) stay in the CPU cache

_F16_VALUE = np.arange(2 ** 16, dtype=np.uint16).view(np.float16).astype(np.float32)  # a lookup beats
with np.errstate(all="ignore"):  # numpy's float16 -> float32 conversion (no SIMD) by ~2x
    _F16_LOG = np.log(np.maximum(_F16_VALUE, np.float32(EPS)))
    _F16_LOG[~np.isfinite(_F16_LOG)] = np.log(np.float32(EPS))  # NaN/negative codes never occur in probs


class PairCache(Protocol):
    """Stored divergences per (base id, model id): float32 [2, N] (MSE row, KL row) or None."""

    def get_divergence(self, base: str, model: str) -> np.ndarray | None: ...

    def put_divergence(self, base: str, model: str, values: np.ndarray) -> None: ...


def log_clipped(p: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """log(max(p, EPS)) in float32; for float16 input a lookup over all 65,536 values."""
    if p.dtype == np.float16:
        return np.take(_F16_LOG, p.view(np.uint16), out=out)
    return np.log(np.maximum(p.astype(np.float32), np.float32(EPS)), out=out)


def as_float32(p: np.ndarray, out: np.ndarray) -> np.ndarray:
    """p in float32, written into `out` (float16 through a lookup)."""
    if p.dtype == np.float16:
        return np.take(_F16_VALUE, p.view(np.uint16), out=out)
    np.copyto(out, p)
    return out


def divergences(base: np.ndarray, others: Sequence[np.ndarray], threads: int = 2) -> np.ndarray:
    """float32 [2, len(others), N]: MSE and KL of each model's probabilities [N, C] against `base`,
    streamed over row blocks (the base's logs taken once per block, both cores of a 2-core server),
    with preallocated per-block buffers (no [N, C] temporary)."""
    n, c = np.shape(base)
    out = np.zeros((2, len(others), n), dtype=np.float32)
    if not others or not n:
        return out
    blocks = np.array_split(np.arange(0, n, ROWS), max(1, min(threads, -(-n // ROWS))))

    def run(starts: np.ndarray) -> None:
        b, log_b, work = (np.empty((ROWS, c), np.float32) for _ in range(3))
        for s in starts:
            e = min(int(s) + ROWS, n)
            r = e - s
            chunk = np.asarray(base[s:e])
            as_float32(chunk, b[:r])
            log_clipped(chunk, out=log_b[:r])
            for k, other in enumerate(others):
                rows = np.asarray(other[s:e])
                log_clipped(rows, out=work[:r])
                np.subtract(log_b[:r], work[:r], out=work[:r])
                out[1, k, s:e] = np.einsum("ij,ij->i", b[:r], work[:r])
                as_float32(rows, work[:r])
                np.subtract(work[:r], b[:r], out=work[:r])
                out[0, k, s:e] = np.einsum("ij,ij->i", work[:r], work[:r]) / c

    with ThreadPoolExecutor(len(blocks)) as pool:
        list(pool.map(run, blocks))
    return out


def against_base(models: list[str], probs: list, cache: PairCache | None) -> tuple[np.ndarray, np.ndarray]:
    """(mse[M, N], kl[M, N]) of models[1:] against models[0] (row 0 zeros): stored pairs are read,
    the others computed from `probs` in one pass and stored."""
    m = len(models)
    n = int(np.shape(probs[0])[0]) if probs else 0
    mse, kl = np.zeros((m, n), np.float32), np.zeros((m, n), np.float32)
    todo = []
    for k in range(1, m):
        found = cache.get_divergence(models[0], models[k]) if cache is not None else None
        if found is not None and np.shape(found) == (2, n):
            mse[k], kl[k] = found
        else:
            todo.append(k)
    if todo:
        computed = divergences(probs[0], [probs[k] for k in todo])
        for i, k in enumerate(todo):
            mse[k], kl[k] = computed[0, i], computed[1, i]
            if cache is not None:
                cache.put_divergence(models[0], models[k], computed[:, i])
    return mse, kl
