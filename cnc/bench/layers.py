"""Layers tab at scale: a synthetic 2,000-module summary for 20 models (no torch, no disk cache).

Times the callback body (table build + components + JSON encoding of the response) for the tree
with ~200 rows expanded (one page of them drawn), a mode switch and a base switch; then what
precompute's layer summary of one ~100M-parameter model costs (cnc.bench.layer_summary).
"""
from __future__ import annotations

import time

import numpy as np
from plotly.io.json import to_json_plotly  # what Dash encodes responses with

from cnc.bench import layer_summary, median_ms
from cnc.experiment.synthetic import make_experiment

N_BINS, SAMPLE = 40, 2048


def module_names(n_modules: int) -> list[tuple[str, str]]:
    """ResNet-like dotted names: stem, stages of blocks (conv/bn pairs, downsample), head."""
    names = [("stem.conv", "Conv2d"), ("stem.bn", "BatchNorm2d")]
    stage = 0
    while len(names) < n_modules - 1:
        for block in range(6):
            for part in ("conv1", "bn1", "conv2", "bn2"):
                names.append((f"stage{stage}.block{block}.{part}", "BatchNorm2d" if "bn" in part else "Conv2d"))
            if block == 0:
                names += [(f"stage{stage}.block0.downsample.0", "Conv2d"),
                          (f"stage{stage}.block0.downsample.1", "BatchNorm2d")]
        stage += 1
    return names[:n_modules - 1] + [("head.fc", "Linear")]


def _summary(kind: str, count: int, sample: np.ndarray, edges: np.ndarray) -> dict:
    hist, _ = np.histogram(np.clip(sample, edges[0], edges[-1]), bins=edges)
    hist = np.round(hist * count / max(len(sample), 1)).astype(np.int64)
    return {"type": kind, "count": count, "zeros": int(round(np.mean(sample == 0) * count)), "edges": edges,
            "hist": hist, "sample": sample.astype(np.float32), "l2": float(np.linalg.norm(sample)),
            "mean": float(sample.mean()), "std": float(sample.std())}


def synthetic_summaries(model_ids: list[str], n_modules: int = 500, seed: int = 0) -> dict[str, dict]:
    """{model id: params-like summaries}: the first model is dense, the others pruned (globally
    or per layer), fine-tuned or quantized versions of it."""
    rng = np.random.default_rng(seed)
    names = module_names(n_modules)
    counts = {n: (int(rng.integers(16, 512)) if k == "BatchNorm2d" else int(rng.integers(2000, 300_000)))
              for n, k in names}
    base = {n: rng.normal(1.0 if k == "BatchNorm2d" else 0.0, 0.05, min(counts[n], SAMPLE)) for n, k in names}
    edges = {n: np.linspace(v.min() - 0.1, v.max() + 0.1, N_BINS + 1) for n, v in base.items()}
    out = {}
    for i, m in enumerate(model_ids):
        recipe = i % 4
        summ = {}
        for n, k in names:
            v = base[n].copy()
            if i and recipe == 0:  # global magnitude pruning: small values everywhere
                v[np.abs(v) < np.quantile(np.abs(v), 0.5)] = 0
            elif i and recipe == 1 and k != "BatchNorm2d":  # layer-wise pruning spares batch norms
                v[rng.random(len(v)) < 0.7] = 0
            elif i and recipe == 2:  # fine-tuning
                v = v + rng.normal(0, 0.01, len(v))
            elif i and recipe == 3:  # 4-bit quantization
                step = np.abs(v).max() / 7
                v = np.round(v / step) * step
            summ[n] = _summary(k, counts[n], v, edges[n])
        out[m] = summ
    return out


class _SyntheticCtx:
    """Just what cnc.ui.layers reads from an AppContext."""

    task_hash = "bench"

    def __init__(self, n_models: int, n_modules: int):
        self.experiment = make_experiment(n_models)
        self.ids = list(self.experiment.models)[:n_models]
        self.summaries = synthetic_summaries(self.ids, n_modules)

    def params(self, model_id: str) -> dict | None:
        return self.summaries.get(model_id)

    activations = params

    def status(self, model_id: str) -> str:
        return "ready"


def _open_for(rows_wanted: int, ctx: _SyntheticCtx) -> list[str]:
    """Expand stages then blocks in order until about `rows_wanted` rows are visible."""
    from cnc.analysis import layers as L

    tree = L.build_tree([list(ctx.summaries[ctx.ids[0]])])
    opened: list[str] = []
    for i, name in enumerate(tree.names):
        if tree.children[i]:
            opened.append(name)
            table_rows = _count_visible(tree, set(opened))
            if table_rows >= rows_wanted:
                break
    return opened


def _count_visible(tree, opened: set[str]) -> int:
    n, stack = 0, [i for i in range(len(tree.names)) if tree.parent[i] < 0]
    while stack:
        i = stack.pop()
        n += 1
        if tree.names[i] in opened:
            stack.extend(tree.children[i])
    return n


def _cpu_ms(fn, repeat: int = 3) -> float:
    """Median CPU time of `fn` (ms): steadier than wall time on a shared, loaded machine."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append((time.process_time() - t0) * 1000)
    return round(sorted(times)[len(times) // 2], 1)


def scenarios(quick: bool) -> list[dict]:
    """Tree with ~200 rows expanded (histograms), mode switch, sorted view, base switch.
    Repeats of one view reuse memoized comparisons and histogram images, as the app does;
    the base switch recomputes every comparison, the table and all histograms."""
    from cnc.ui import layers as ui

    n_models, n_modules, rows = (5, 100, 60) if quick else (20, 2000, 200)
    ctx = _SyntheticCtx(n_models, n_modules)
    opened = _open_for(rows, ctx)

    def render(mode: str, base: str, sort: str = "tree") -> int:
        state = {"mode": mode, "sort": sort, "sortby": None, "scale": "sqrt", "open": opened}
        body, _, _ = ui.update(ctx, {"models": ctx.ids, "base": base}, "layers", state, None, None)
        return len(to_json_plotly(body))

    t0 = time.perf_counter()
    size = render("weights", ctx.ids[0])
    cold = round((time.perf_counter() - t0) * 1000, 1)
    n_rows = len(ui.L.visible_rows(ui.layer_table(ctx, ctx.ids, ctx.ids[0], "params"), "tree", set(opened)))
    common = {"models": n_models, "modules": n_modules, "rows": n_rows, "drawn_rows": min(n_rows, ui.PAGE_ROWS)}
    views = [
        ("layers.tree_weights", lambda: render("weights", ctx.ids[0]), {"cold_ms": cold, "bytes": size}),
        ("layers.switch_mode_sparsity", lambda: render("sparsity", ctx.ids[0]), {}),
        ("layers.sort_by_change", lambda: render("weights", ctx.ids[0], "change"), {}),
    ]
    out = [{"scenario": name, **common, "ms": median_ms(fn), "cpu_ms": _cpu_ms(fn), **extra}
           for name, fn, extra in views]
    bases = iter(ctx.ids[1:] * 3)
    switch = lambda: render("weights", next(bases))  # noqa: E731 - a new base every call
    out.append({"scenario": "layers.switch_base", **common, "ms": median_ms(switch, repeat=3, warmup=0),
                "cpu_ms": _cpu_ms(switch), "bytes": render("weights", ctx.ids[-1])})
    return out + layer_summary.scenarios(quick)
