"""ImageNet-shaped end-to-end benchmark: 8 real torch models x 50,000 instances x 1,000 classes.

Everything goes through the real code: a `dataset()` task batched by a DataLoader, the real
precompute into the real diskcache, and the real Behaviors / Layers callbacks in a fresh serving
process whose cache files are first dropped from the OS page cache (posix_fadvise DONTNEED), so
the first open reads from disk. Models are small (an MLP over 3x16x16 synthetic "images" into
1,000 classes: base, magnitude-pruned and weight-quantized variants), the data synthetic but
learnable (class centroids plus noise), so accuracy, errors and flips are realistic.

Records: scale.bare_inference / scale.precompute (per model, wall and CPU time of this process on
one torch thread, and their ratios: on a shared machine the CPU ratio is the steadier one),
scale.cache_bytes, scale.first_open, scale.switch / sort / filter, scale.divergence (the first
MSE/KL view: all probabilities streamed from disk), scale.instance, scale.layers and
scale.peak_rss_mb of the serving process. --quick (a smoke run): 3 models x 2,000 instances.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SHAPE = (3, 16, 16)
HIDDEN = 256
CLASSES = 1000
BATCH = 1000
BANK = 4096  # distinct noise vectors, reused across instances (generation stays cheap)


class Synthetic(torch.utils.data.Dataset):
    """Instance i: its class centroid plus noise; generated a batch at a time (`__getitems__`)."""

    def __init__(self, n: int, classes: int = CLASSES, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        dim = int(np.prod(SHAPE))
        self.centroids = torch.randn(classes, dim, generator=g)
        self.noise = torch.randn(BANK, dim, generator=g) * 1.1
        self.targets = torch.randint(0, classes, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitems__(self, indices: list[int]):
        idx = torch.as_tensor(indices)
        y = self.targets[idx]
        x = self.centroids[y] + self.noise[(idx * 7919) % BANK]
        return list(zip(x.reshape(-1, *SHAPE), y))

    def __getitem__(self, i: int):
        return self.__getitems__([i])[0]


def make_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(SHAPE)), HIDDEN), torch.nn.ReLU(),
                               torch.nn.Linear(HIDDEN, CLASSES))


class ScaleTask:
    """The task protocol the real-scale way: `dataset()` plus a cheap `labels()`."""

    def __init__(self, n: int = 50_000):
        self.data = Synthetic(n)
        self.class_names = [f"class {c}" for c in range(CLASSES)]

    def load_model(self, checkpoint: str) -> torch.nn.Module:
        model = make_model()
        model.load_state_dict(torch.load(checkpoint, weights_only=True))
        return model.eval()

    def dataset(self) -> torch.utils.data.Dataset:
        return self.data

    def labels(self) -> np.ndarray:
        return self.data.targets.numpy()

    def attributes(self) -> dict[str, list[str]]:
        return {"brightness": [("dark", "mid", "bright")[i % 3] for i in range(len(self.data))]}

    def render_instance(self, index: int) -> dict:
        x, _ = self.data[index]
        img = (x - x.min()) / (x.max() - x.min() + 1e-9) * 255
        return {"kind": "image", "pixels": img.permute(1, 2, 0).round().int().tolist()}


def _base_model(data: Synthetic) -> torch.nn.Module:
    """A nearest-centroid classifier in random-feature space: no training, decent accuracy."""
    torch.manual_seed(0)
    model = make_model()
    with torch.no_grad():
        model[1].bias.zero_()
        h = torch.relu(model[1](data.centroids))
        model[3].weight.copy_(h / h.norm(dim=1, keepdim=True) * 8)
        model[3].bias.copy_(-(model[3].weight * h).sum(1) / 2 / 8)
    return model


def _variants(base: torch.nn.Module) -> dict[str, tuple[torch.nn.Module, str]]:
    def pruned(amount: float) -> torch.nn.Module:
        m = make_model()
        m.load_state_dict(base.state_dict())
        with torch.no_grad():
            for layer in (m[1], m[3]):
                w = layer.weight
                w[w.abs() <= w.abs().flatten().kthvalue(int(amount * w.numel())).values] = 0
        return m

    def quantized(bits: int, m: torch.nn.Module | None = None) -> torch.nn.Module:
        m = m or pruned(0.0001)
        with torch.no_grad():
            for layer in (m[1], m[3]):
                scale = layer.weight.abs().max() / (2 ** (bits - 1) - 1)
                layer.weight.copy_(torch.round(layer.weight / scale) * scale)
        return m

    return {"base": (base, ""), "p30": (pruned(0.3), "prune 0.3"), "p50": (pruned(0.5), "prune 0.5"),
            "p70": (pruned(0.7), "prune 0.7"), "p90": (pruned(0.9), "prune 0.9"), "q8": (quantized(8), "quantize 8"),
            "q4": (quantized(4), "quantize 4"), "p50q8": (quantized(8, pruned(0.5)), "prune 0.5 + quantize 8")}


QUICK_MODELS = ("base", "p50", "q8")  # --quick (a smoke run): 2,000 instances, these 3 models


def build(folder: Path, n: int, only: tuple[str, ...] | None = None) -> Path:
    """Checkpoints, experiment and config for the benchmark (`only`: these variants); returns
    the config path."""
    task = ScaleTask(n)
    lines = ["models:"]
    for mid, (model, op) in _variants(_base_model(task.data)).items():
        if only is not None and mid not in only:
            continue
        torch.save(model.state_dict(), folder / f"{mid}.pt")
        extra = f", base: base, operation: {{name: '{op}'}}" if op else ""
        lines.append(f"  - {{id: {mid}, checkpoint: {mid}.pt{extra}}}")
    (folder / "exp.yaml").write_text("\n".join(lines) + "\n")
    cfg = folder / "cfg.yaml"
    cfg.write_text(f"experiment: exp.yaml\ntask: {{entry: 'cnc.bench.scale:ScaleTask', options: {{n: {n}}}, "
                   f"batch_size: {BATCH}, num_workers: 0, device: auto}}\n")
    return cfg


def bare_inference_s(task: ScaleTask, checkpoints: list[Path]) -> tuple[float, float]:
    """(wall, CPU) seconds per model for just the forward passes over the same DataLoader (no
    summaries), after one warm-up pass (thread pools, first-touch allocations)."""
    bare_pass(task, checkpoints[0])
    t0, c0 = time.perf_counter(), time.process_time()
    for ckpt in checkpoints:
        bare_pass(task, ckpt)
    return (time.perf_counter() - t0) / len(checkpoints), (time.process_time() - c0) / len(checkpoints)


def bare_pass(task: ScaleTask, ckpt: Path) -> None:
    model = task.load_model(str(ckpt))
    with torch.inference_mode():
        for x, _ in torch.utils.data.DataLoader(task.dataset(), batch_size=BATCH):
            model(x)


def serve(config: str, cache: str) -> list[dict]:
    """The serving half, in a fresh process: first open with cold files, then view changes."""
    from cnc.analysis import behavior_view
    from cnc.app.cli import load
    from cnc.bench import drop_page_cache, median_ms, peak_rss_mb
    from cnc.bench.behaviors import open_view
    from cnc.ui import behaviors as ui
    from cnc.ui import layers

    drop_page_cache(Path(cache))
    ctx = load(config, cache, precompute=False, progress=False)
    models = list(ctx.experiment.models)
    base = {"n": len((ctx.task_data() or {}).get("labels", [])), "models": len(models)}
    records = []

    def timed(name: str, fn, repeat: int = 1) -> None:
        records.append({"scenario": f"scale.{name}", "ms": median_ms(fn, repeat, warmup=0), **base})

    first = behavior_view.ViewState()  # what the Behaviors tab opens with: classes, error rate
    timed("first_open", lambda: open_view(ctx, models, first, clear=False))
    timed("switch", lambda: open_view(ctx, models, behavior_view.ViewState(mode="instances", metric="conf", rel=True)), 3)
    timed("sort", lambda: open_view(ctx, models, behavior_view.ViewState(mode="instances", metric="conf", rel=True,
                                                               sort=models[-1])), 3)
    timed("filter", lambda: open_view(ctx, models, behavior_view.ViewState(mode="instances", filt="newerr", sort=models[-1])), 3)
    timed("divergence", lambda: open_view(ctx, models, behavior_view.ViewState(mode="instances", metric="kl", sort=models[-1])))
    timed("instance", lambda: json.dumps(ui.detail_panel(ctx, models, 12345 % base["n"]),
                                         default=lambda c: c.to_plotly_json()))
    state = {"mode": "weights", "sort": "tree", "sortby": None, "scale": "sqrt", "open": None}
    selection = {"models": models, "base": models[0]}
    timed("layers", lambda: layers.update(ctx, selection, "layers", state, None, None))
    timed("layers_activations", lambda: layers.update(ctx, selection, "layers", {**state, "mode": "activations"},
                                                      None, None))
    records.append({"scenario": "scale.peak_rss_mb", "ms": 0.0, **base,
                    "peak_rss_mb": peak_rss_mb()})
    return records


def scenarios(quick: bool) -> list[dict]:
    from cnc.experiment.config import load_config
    from cnc.precompute.run import precompute
    from cnc.precompute.store import SummaryStore

    n = 2_000 if quick else 50_000
    with tempfile.TemporaryDirectory(prefix="cnc-scale-") as tmp:
        folder = Path(tmp)
        cfg_path = build(folder, n, QUICK_MODELS if quick else None)
        cfg = load_config(cfg_path, cache_dir=folder / "cache")
        store = SummaryStore(cfg.cache_dir)
        checkpoints = sorted(folder.glob("*.pt"))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a shared 2-core machine: a busy torch thread pool swings wall times 0.8-4.5x
        try:
            bare, bare_cpu = bare_inference_s(ScaleTask(n), checkpoints)
            t0, c0 = time.perf_counter(), time.process_time()
            report = precompute(cfg, store, progress=False)
            per_model, per_model_cpu = ((time.perf_counter() - t0) / len(checkpoints),
                                        (time.process_time() - c0) / len(checkpoints))
        finally:
            torch.set_num_threads(threads)
        assert not report.failed, report.failed
        size = {"n": n, "models": len(checkpoints), "classes": CLASSES}
        cache_bytes = sum(p.stat().st_size for p in (folder / "cache").rglob("*") if p.is_file())
        f16 = n * CLASSES * 2
        records = [
            {"scenario": "scale.bare_inference", "ms": round(bare * 1000, 1), **size, "cpu_ms": round(bare_cpu * 1000, 1)},
            {"scenario": "scale.precompute", "ms": round(per_model * 1000, 1), **size,
             "ratio_to_inference": round(per_model / bare, 2), "cpu_ms": round(per_model_cpu * 1000, 1),
             "cpu_ratio_to_inference": round(per_model_cpu / bare_cpu, 2)},
            {"scenario": "scale.cache_bytes", "ms": 0.0, **size, "bytes_per_model": cache_bytes // len(checkpoints),
             "ratio_to_float16_probs": round(cache_bytes / len(checkpoints) / f16, 3)},
        ]
        code = ("import json, sys; from cnc.bench.scale import serve; "
                "print(json.dumps(serve(sys.argv[1], sys.argv[2])))")
        done = subprocess.run([sys.executable, "-c", code, str(cfg_path), str(folder / "cache")],
                              capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2])
        served = json.loads(done.stdout.strip().splitlines()[-1])
        return records + [{**r, "classes": CLASSES} for r in served]
