"""Quantized models in the Layers table (pure; no Dash): each module's storage type and bits per
weight, and its exact quantization error against the tree's root, from the `storage`, `bits` and
error sums ("diff_sq", "ref_sq", "own_sq", "dot") that precompute stores with a module's summary
(cnc.evaluation.quantized.weights). Parent rows sum the error terms of their descendants, so their
relative error is that of all their weights together, not an average of ratios.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

FLOAT_TYPES = {"F64", "F32", "F16", "BF16"}
SUMS = ("diff_sq", "ref_sq", "own_sq", "dot")


@dataclass
class QuantColumns:
    storage: list[list[str]]  # [nodes][models]: a module's own storage type ('' for parents or none)
    bits: np.ndarray  # float64[N, J] bits per weight, parents count-weighted (nan: unknown)
    error: np.ndarray  # float64[N, J] ‖W − W_ref‖ / ‖W_ref‖ (nan: no reference)
    cosine: np.ndarray  # float64[N, J]
    quantized: np.ndarray  # bool[J]: the model stores some weights in a non-float type

    def sqnr_db(self, node: int, col: int) -> float:
        e = self.error[node, col]
        return float("inf") if e == 0 else float(-20 * np.log10(e)) if np.isfinite(e) else float("nan")

    def types(self) -> list[str]:
        """Every storage type in the table, most common first."""
        seen: dict[str, int] = {}
        for row in self.storage:
            for s in row:
                for part in filter(None, s.split("+")):
                    seen[part] = seen.get(part, 0) + 1
        return sorted(seen, key=lambda s: (-seen[s], s))


def quant_columns(n_nodes: int, module: np.ndarray, entries: Sequence[Sequence[dict] | None],
                  aggregate: Callable[[np.ndarray], np.ndarray]) -> QuantColumns | None:
    """Per node and model, from each model's summary entries in `Packed` order (`module[N, J]`: a
    node's index there, -1 when absent); `aggregate` sums a [N, ...] array over each node's subtree.
    None when no model has storage information (float models summarized from a loaded module)."""
    j = len(entries)
    storage = [[""] * j for _ in range(n_nodes)]
    bits_w = np.zeros((n_nodes, j))
    counts = np.zeros((n_nodes, j))
    sums = np.zeros((n_nodes, j, len(SUMS)))
    has_sums = np.zeros((n_nodes, j), dtype=bool)
    quantized = np.zeros(j, dtype=bool)
    found = False
    for col, model_entries in enumerate(entries):
        if model_entries is None:
            continue
        for node in np.flatnonzero(module[:, col] >= 0).tolist():
            e = model_entries[module[node, col]]
            if "storage" not in e:
                continue
            found = True
            storage[node][col] = str(e["storage"])
            quantized[col] |= any(p not in FLOAT_TYPES for p in str(e["storage"]).split("+"))
            counts[node, col] = float(e["count"])
            bits_w[node, col] = float(e["bits"]) * float(e["count"])
            if all(k in e for k in SUMS):
                sums[node, col] = [float(e[k]) for k in SUMS]
                has_sums[node, col] = True
    if not found:
        return None
    total = aggregate(counts)
    agg_sums = aggregate(sums)
    known = aggregate(has_sums.astype(np.float64)) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        bits = np.where(total > 0, aggregate(bits_w) / total, np.nan)
        diff, ref, own, dot = (agg_sums[..., k] for k in range(len(SUMS)))
        error = np.where(known & (ref > 0), np.sqrt(diff / ref), np.where(known & (diff == 0), 0.0, np.nan))
        cosine = np.where(known & (ref > 0) & (own > 0), dot / np.sqrt(own * ref), np.nan)
    return QuantColumns(storage, bits, error, cosine, quantized)


def scores(quant: QuantColumns | None, sort: str, others: list[int]) -> np.ndarray | None:
    """Per node: "error" the largest relative error over the given models, "bits" minus the fewest
    bits per weight (so the highest score, the first row, is the most compressed). None: no data."""
    if quant is None or not others:
        return None
    if sort == "error":
        v = quant.error[:, others]
        best = np.where(np.isnan(v), -np.inf, v).max(axis=1)
    else:
        v = quant.bits[:, others]
        best = -np.where(np.isnan(v), np.inf, v).min(axis=1)
    return np.where(np.isinf(best) & (best < 0), np.nan, best)


def with_storage(quant: QuantColumns | None, rows: list[int], wanted: set[str], cols: list[int]) -> list[int]:
    """The rows whose own storage, in any of the given models, is one of `wanted` (all rows when empty)."""
    if not wanted or quant is None:
        return rows
    return [r for r in rows if any(set(quant.storage[r][c].split("+")) & wanted for c in cols)]
