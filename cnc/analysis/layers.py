"""Module-by-module comparison of models against a base, from cached summaries (pure; no Dash).

Input: per model, the `params` or `activations` summaries of `cnc.precompute.store` ({module: {"count",
"zeros", "edges", "hist", "sample", "l2", ...}}). Because every model of a task shares a module's
bin edges and samples the same element positions, a model's sample can be compared element by
element with the base's. That gives (1) a relative L2 change score per module and (2) a change
category per sampled element, whose mix per bin is scaled to the bin's full count to colour the
stacked histograms. Parent rows aggregate their descendants, weighted by element count.

Everything is vectorized over modules (one numpy pass per model pair), so a 500-module model
compared with 20 others stays well under the interactive budget.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from cnc.analysis.layer_quant import QuantColumns, quant_columns, scores

CATEGORIES = ("unchanged", "small", "large", "zeroed", "unknown")
UNCHANGED, SMALL, LARGE, ZEROED, UNKNOWN = range(len(CATEGORIES))
N_CAT = len(CATEGORIES)
SMALL_REL = 0.1  # |change| up to 10% of the base module's RMS counts as a small change
EXACT_REL = 1e-6  # below this (relative to the RMS) a value counts as unchanged
MODES = ("sparsity", "weights", "activations")
SORTS = ("tree", "change", "spread", "sparsity", "error", "bits")  # the last two: quantized models
COMPARE_BUDGET = 1 << 18  # sampled elements per model a comparison reads (a 2,000-module model: ~130 each)
MIN_PER_MODULE = 64


def canonical_name(name: str) -> str:
    """Match wrapped modules by name: drop a DataParallel `module.` prefix and packed-param
    wrappers of quantized modules, so `module.fc._packed_params` matches `fc`."""
    parts = [p for p in name.split(".") if p != "_packed_params"]
    if len(parts) > 1 and parts[0] == "module":
        parts = parts[1:]
    return ".".join(parts) or name


@dataclass
class Packed:
    """One model's summaries as flat arrays (module order as given). Per sampled element it also
    keeps its module (`row`) and histogram cell (`key`), which never depend on the base."""
    names: list[str]
    index: dict[str, int]
    types: list[str]
    counts: np.ndarray  # int64[M]
    zeros: np.ndarray  # int64[M]
    hist: np.ndarray  # float64[M, B]
    edges: np.ndarray  # float64[M, B+1]
    samples: np.ndarray  # float32[total] (as stored; halves the memory traffic of comparisons)
    offsets: np.ndarray  # int64[M+1]
    row: np.ndarray  # int32[total]: module of each sampled element
    key: np.ndarray  # int32[total]: (row * bins + bin) * N_CAT, the histogram cell of each element
    rms: np.ndarray  # float64[M]: root mean square of each module's sample

    @property
    def n_bins(self) -> int:
        return self.hist.shape[1]


def _thinned(sample, keep: int) -> np.ndarray:
    """Every k-th element of a module's sample, at most `keep` of them (spread over the tensor)."""
    sample = np.asarray(sample, dtype=np.float32)
    step = -(-len(sample) // keep) if keep > 0 else 1
    return sample[::step] if step > 1 else sample


def pack(summary: dict[str, dict], budget: int = COMPARE_BUDGET) -> Packed:
    """Flatten a {module: summary} dict (module names canonicalized; histograms padded to the
    largest bin count). A model whose samples hold more than `budget` elements keeps a spread
    subset of each module's sample (at least `MIN_PER_MODULE`), so comparing two 2,000-module
    models stays within the interactive budget; changes and change mixes are estimates from
    the kept elements (counts, zeros and histograms stay exact)."""
    names = [canonical_name(n) for n in summary]
    entries = list(summary.values())
    m = len(entries)
    n_bins = max((len(e["hist"]) for e in entries), default=1)
    hist = np.zeros((m, n_bins))
    edges = np.tile(np.linspace(-1.0, 1.0, n_bins + 1), (m, 1))
    for i, e in enumerate(entries):
        h = np.asarray(e["hist"], dtype=np.float64)
        hist[i, :len(h)] = h
        ed = np.asarray(e["edges"], dtype=np.float64)
        if len(ed) == n_bins + 1:
            edges[i] = ed
        elif len(ed) >= 2:  # fewer bins than the others: extend with the last width
            edges[i] = np.concatenate([ed, ed[-1] + (ed[-1] - ed[-2]) * np.arange(1, n_bins + 2 - len(ed))])
    raw = [e["sample"] for e in entries]
    if sum(len(r) for r in raw) > budget:
        keep = max(MIN_PER_MODULE, budget // max(m, 1))
        raw = [_thinned(r, keep) for r in raw]
    lengths = np.array([len(r) for r in raw], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    samples = (np.concatenate([np.asarray(r, dtype=np.float32) for r in raw])
               if m else np.zeros(0, dtype=np.float32))
    row = np.repeat(np.arange(m, dtype=np.int32), lengths)
    sq = _segment_sums(samples * samples, lengths)
    kbin = _bin_of(samples, edges, row)
    return Packed(
        names=names, index={n: i for i, n in enumerate(names)},
        types=[str(e.get("type", "")) for e in entries],
        counts=np.array([int(e["count"]) for e in entries], dtype=np.int64),
        zeros=np.array([int(e["zeros"]) for e in entries], dtype=np.int64),
        hist=hist, edges=edges, samples=samples, offsets=offsets, row=row,
        key=((row * n_bins + kbin) * N_CAT).astype(np.int32), rms=np.sqrt(sq / np.maximum(lengths, 1)),
    )


@dataclass
class Comparison:
    """A model vs the base, aligned to the model's modules (`Packed.names`)."""
    comparable: np.ndarray  # bool[M]: same module with the same element count in the base
    change: np.ndarray  # float64[M]: relative L2 change (nan: not comparable; inf: base is all zero)
    mix: np.ndarray  # float64[M, B, N_CAT]: estimated element count per bin and change category
    fractions: np.ndarray  # float64[M, N_CAT]: share of elements per change category


def _bin_of(values: np.ndarray, edges: np.ndarray, row: np.ndarray) -> np.ndarray:
    """np.histogram's bin index of each value on the edges of its module (`edges[row]`),
    values clipped to the edges first as `cnc.inspect.summarize` does."""
    n_bins = edges.shape[1] - 1
    lo, hi = edges[row, 0], edges[row, -1]
    values = np.clip(values, lo, hi)
    width = np.where(hi > lo, hi - lo, 1.0)
    k = np.clip(((values - lo) / width * n_bins).astype(np.int64), 0, n_bins - 1)
    k -= values < edges[row, k]
    k = np.clip(k, 0, n_bins - 1)
    k += (values >= edges[row, k + 1]) & (k < n_bins - 1)
    return k


def _segment_sums(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments of the given lengths (empty segments sum to 0)."""
    out = np.zeros(len(lengths))
    nonempty = lengths > 0
    if values.size:
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        out[nonempty] = np.add.reduceat(values, starts, dtype=np.float64)
    return out


def _same_layout(a: Packed, b: Packed) -> bool:
    return a.names == b.names and np.array_equal(a.offsets, b.offsets) and np.array_equal(a.counts, b.counts)


def compare(model: Packed, base: Packed | None) -> Comparison:
    """Per-module change of `model` relative to `base` (None: nothing comparable)."""
    m, n_bins = len(model.names), model.n_bins
    change = np.full(m, np.nan)
    mix = np.zeros((m, n_bins, N_CAT))
    mix[:, :, UNKNOWN] = model.hist
    fractions = np.zeros((m, N_CAT))
    fractions[:, UNKNOWN] = 1.0
    comparable = np.zeros(m, dtype=bool)
    if base is None or m == 0 or base.n_bins != n_bins:
        return Comparison(comparable, change, mix, fractions)
    lengths = np.diff(model.offsets)
    if _same_layout(model, base):  # the usual case: element i of both samples is one position
        comparable[:] = True
        mods = np.arange(m)
        v, b, row, key = model.samples, base.samples, model.row, model.key
        base_rms = base.rms
    else:  # matched by name; a module whose element count changed is not comparable
        qi = np.array([base.index.get(n, -1) for n in model.names], dtype=np.int64)
        found = qi >= 0
        comparable[found] = ((base.counts[qi[found]] == model.counts[found])
                             & (np.diff(base.offsets)[qi[found]] == lengths[found]))
        mods = np.flatnonzero(comparable & (lengths > 0))
        size = lengths[mods]
        within = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
        at = np.repeat(model.offsets[mods], size) + within
        v, kbin = model.samples[at], (model.key[at] // N_CAT) % n_bins
        b = base.samples[np.repeat(base.offsets[qi[mods]], size) + within]
        row = np.repeat(np.arange(len(mods), dtype=np.int32), size)
        key = ((row * n_bins + kbin) * N_CAT).astype(np.int32)
        base_rms = base.rms[qi[mods]]
    if len(mods) == 0:
        return Comparison(comparable, change, mix, fractions)
    size = np.maximum(lengths[mods], 1)
    d = v - b
    base_sq = base_rms ** 2 * size
    diff_sq = _segment_sums(d * d, lengths[mods])
    with np.errstate(divide="ignore", invalid="ignore"):
        change[mods] = np.where(base_sq > 0, np.sqrt(diff_sq / np.where(base_sq > 0, base_sq, 1)),
                                np.where(diff_sq > 0, np.inf, 0.0))
    scale = base_rms.astype(np.float32)[row]
    ad = np.abs(d)
    cat = (ad > EXACT_REL * scale).astype(np.int8) + (ad > SMALL_REL * scale)  # UNCHANGED, SMALL, LARGE
    key = key + np.where((v == 0) & (b != 0), np.int8(ZEROED), cat)
    counts = np.bincount(key, minlength=len(mods) * n_bins * N_CAT).reshape(len(mods), n_bins, N_CAT)
    in_bin = counts.sum(axis=2)
    hist = model.hist[mods]
    # the sampled category shares of a bin, scaled to the bin's full count (one pass over [M, B, C])
    scale_to = np.divide(hist, in_bin, out=np.zeros_like(hist), where=in_bin > 0)
    est = counts * scale_to[:, :, None]
    est[:, :, UNKNOWN] += np.where(in_bin > 0, 0.0, hist)  # bins the sample missed
    if len(mods) == m:
        mix = est
    else:
        mix[mods] = est
    fractions[mods] = counts.sum(axis=1) / size[:, None]
    return Comparison(comparable, change, mix, fractions)


@dataclass
class Tree:
    """Module hierarchy from dotted names; every prefix of a name is a node."""
    names: list[str]  # full dotted names, depth-first order
    parent: np.ndarray  # int64[N], -1 for top-level nodes
    depth: np.ndarray  # int64[N]
    children: list[list[int]]
    index: dict[str, int] = field(default_factory=dict)  # name -> node

    def __post_init__(self) -> None:
        self.index = {n: i for i, n in enumerate(self.names)}
        deepest = int(self.depth.max()) if len(self.depth) else 0
        self._levels = [np.flatnonzero(self.depth == d) for d in range(deepest, 0, -1)]

    def aggregate(self, values: np.ndarray) -> np.ndarray:
        """Per node, the sum of `values` (first axis: nodes) over the node and its descendants;
        one pass per depth level (a dense node x node matrix was 50 MB at 2,000 modules)."""
        out = np.array(values, dtype=np.float64, copy=True)
        for nodes in self._levels:
            np.add.at(out, self.parent[nodes], out[nodes])
        return out


def build_tree(name_lists: Iterable[Sequence[str]]) -> Tree:
    """The union of the models' module names (first seen order) as a tree."""
    kids: dict[str, list[str]] = {"": []}
    for names in name_lists:
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                node, up = ".".join(parts[:i]), ".".join(parts[:i - 1])
                if node not in kids:
                    kids[node] = []
                    kids[up].append(node)
    order: list[str] = []
    stack = list(reversed(kids[""]))
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(kids[node]))
    pos = {n: i for i, n in enumerate(order)}
    parent = np.array([pos.get(n.rpartition(".")[0], -1) if "." in n else -1 for n in order], dtype=np.int64)
    depth = np.array([n.count(".") for n in order], dtype=np.int64)
    return Tree(order, parent, depth, [[pos[c] for c in kids[n]] for n in order])


@lru_cache(maxsize=32)
def _tree_of(name_lists: tuple[tuple[str, ...], ...]) -> Tree:
    """Models of one architecture share a tree: build it once per distinct set of name lists."""
    return build_tree(name_lists)


@dataclass
class LayerTable:
    """Everything the Layers tab draws, per tree node (rows) and model (columns).

    Leaf-level arrays hold a node's own data; `agg_*` aggregate a node with its descendants."""
    tree: Tree
    models: list[str]
    base: int  # column of the base model
    present: np.ndarray  # bool[N, J]: the node has own data in that model
    types: list[str]  # per node ('' for pure containers)
    counts: np.ndarray  # float64[N, J] own element counts (0 when absent)
    agg_count: np.ndarray  # float64[N, J]
    agg_sparsity: np.ndarray  # float64[N, J] (nan when nothing present)
    agg_change: np.ndarray  # float64[N, J] count-weighted relative change (nan: nothing comparable)
    agg_fractions: np.ndarray  # float64[N, J, N_CAT] count-weighted change-category mix
    module: np.ndarray = field(repr=False)  # int64[N, J]: the node's index in that model's modules, -1
    comparisons: list[Comparison | None] = field(repr=False)
    quant: QuantColumns | None = field(default=None, repr=False)  # storage types and quantization error

    def mix(self, node: int, col: int) -> np.ndarray | None:
        """[B, N_CAT] estimated counts of a node's own values in one model (None: absent)."""
        i = self.module[node, col]
        return None if i < 0 else self.comparisons[col].mix[i]


def build_table(models: list[str], base: int, packs: list[Packed | None],
                comparisons: list[Comparison | None], entries: list[list[dict] | None] | None = None) -> LayerTable:
    """Align every model's modules on one tree and aggregate parents (count-weighted). `entries`
    (each model's summary entries in pack order) add quantized models' storage and error columns."""
    tree = _tree_of(tuple(dict.fromkeys(tuple(p.names) for p in packs if p is not None)))
    pos = tree.index
    n, j = len(tree.names), len(models)
    present = np.zeros((n, j), dtype=bool)
    counts = np.zeros((n, j))
    zeros = np.zeros((n, j))
    change = np.full((n, j), np.nan)
    fractions = np.zeros((n, j, N_CAT))
    types = [""] * n
    module = np.full((n, j), -1, dtype=np.int64)
    order = [base] + [c for c in range(j) if c != base]
    for col in reversed(order):  # the base model's type names win
        p, c = packs[col], comparisons[col]
        if p is None or c is None:
            continue
        rows = np.array([pos[name] for name in p.names], dtype=np.int64)
        present[rows, col] = True
        module[rows, col] = np.arange(len(rows))
        counts[rows, col] = p.counts
        zeros[rows, col] = p.zeros
        change[rows, col] = c.change
        fractions[rows, col] = c.fractions
        for r, kind in zip(rows.tolist(), p.types):
            types[r] = kind
    below = tree.aggregate
    agg_count = below(counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        agg_sparsity = np.where(agg_count > 0, below(zeros) / agg_count, np.nan)
        finite = np.isfinite(change)
        weight = np.where(finite, counts, 0.0)
        wsum = below(weight)
        agg_change = np.where(wsum > 0, below(np.where(finite, change * counts, 0.0)) / wsum, np.nan)
        # a node whose own change is infinite (base all zeros) stays infinite
        agg_change = np.where(below(np.isinf(change) & (counts > 0)) > 0, np.inf, agg_change)
        frac = below(fractions * counts[:, :, None])
        agg_fractions = frac / np.where(agg_count > 0, agg_count, 1.0)[:, :, None]
    quant = quant_columns(n, module, entries, below) if entries is not None else None
    return LayerTable(tree, models, base, present, types, counts, agg_count, agg_sparsity, agg_change,
                      agg_fractions, module, list(comparisons), quant)


def row_scores(table: LayerTable, sort: str, model: int | None = None) -> np.ndarray:
    """Per node (nan: no score):
    - "change" / "sparsity": the value in column `model`, or the largest over the non-base models;
    - "spread": how differently the non-base models changed it, (max - min) / max of the change,
      so a module untouched by one recipe and rewritten by another scores 1 whatever its size."""
    others = [c for c in range(len(table.models)) if c != table.base] or [table.base]
    if sort in ("error", "bits"):
        found = scores(table.quant, sort, [model] if model is not None else others)
        return np.full(len(table.tree.names), np.nan) if found is None else found
    if sort == "spread":
        v = np.minimum(table.agg_change[:, others], 1e12)
        n = np.isfinite(v).sum(axis=1)
        hi = np.where(np.isnan(v), -np.inf, v).max(axis=1)
        lo = np.where(np.isnan(v), np.inf, v).min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((n >= 2) & (hi > 0), (hi - lo) / np.where(hi > 0, hi, 1), np.nan)
    values = table.agg_change if sort == "change" else table.agg_sparsity
    v = values[:, [model] if model is not None else others]
    best = np.where(np.isnan(v), -np.inf, v).max(axis=1)
    return np.where(np.isneginf(best), np.nan, best)


def shown_values(table: LayerTable, mode: str) -> np.ndarray:
    """[nodes, models] the number a view shows per cell: the share of zeros ("sparsity"), else the
    relative change vs the base (nan: nothing to show)."""
    return table.agg_sparsity if mode == "sparsity" else table.agg_change


def visible_rows(table: LayerTable, sort: str, open_nodes: set[str] | None, model: int | None = None) -> list[int]:
    """Rows to draw: the expanded tree in hierarchy order, or (sorted views) a flat list of the
    modules with own data, highest score first (missing scores last)."""
    tree = table.tree
    if sort != "tree":
        own = np.flatnonzero(table.present.any(axis=1))
        scores = row_scores(table, sort, model)[own]
        key = np.where(np.isnan(scores), -np.inf, scores)
        return [int(own[i]) for i in np.argsort(-key, kind="stable")]
    out: list[int] = []
    stack = [i for i in range(len(tree.names)) if tree.parent[i] < 0][::-1]
    while stack:
        i = stack.pop()
        out.append(i)
        if open_nodes is None or tree.names[i] in open_nodes:
            stack.extend(reversed(tree.children[i]))
    return out


def default_open(tree: Tree, max_rows: int = 80) -> set[str] | None:
    """Everything expanded (None) for small models; for large ones only the top level."""
    if len(tree.names) <= max_rows:
        return None
    return {tree.names[i] for i in range(len(tree.names)) if tree.depth[i] == 0 and tree.children[i]}
