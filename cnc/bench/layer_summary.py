"""What precompute's layer summary costs for one big model: a real 8-layer transformer encoder
(d_model 1024, ~101M parameters, built in code, nothing downloaded; --quick: 2 layers of 256).

Times the weight summaries (histogram, sparsity, sample and moments per module, streamed over the
tensors) for the first model of a task (which also sets the shared bin edges: two passes) and for
a later one (edges known: one pass); then the capture of every leaf module's output on a fixed
sample (16 sequences x 32 tokens: one forward pass) and its summaries, and both in one go as for a
later model (each output folded into running summaries as it comes). Memory is the peak resident
set above the model's own (sampled every 2 ms) and tracemalloc's peak (numpy's allocations); CPU
time (`cpu_ms`) is steadier than wall time on a shared machine.
"""
from __future__ import annotations

import os
import threading
import time
import tracemalloc

import torch

from cnc.evaluation import inspection

PAGE = os.sysconf("SC_PAGE_SIZE")


def make_transformer(layers: int, width: int) -> torch.nn.Module:
    layer = torch.nn.TransformerEncoderLayer(width, nhead=16, dim_feedforward=4 * width, batch_first=True)
    return torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).eval()


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class PeakMemory:
    """Peak RSS above the starting one (a sampling thread) and tracemalloc's peak, while inside."""

    def __enter__(self) -> "PeakMemory":
        self.start, self.peak, self.running = _rss(), 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        tracemalloc.start()
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, _rss() - self.start)
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, _rss() - self.start)
        self.traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def _timed(fn) -> tuple[object, dict]:
    """fn's result and {ms, cpu_ms (this process, all threads), peak_extra_rss_mb, tracemalloc_peak_mb}."""
    with PeakMemory() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        ms, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
    return out, {"ms": round(ms, 1), "cpu_ms": round(cpu, 1), "peak_extra_rss_mb": round(mem.peak / 2 ** 20, 1),
                 "tracemalloc_peak_mb": round(mem.traced / 2 ** 20, 1)}


def scenarios(quick: bool) -> list[dict]:
    layers, width = (2, 256) if quick else (8, 1024)
    torch.manual_seed(0)
    model = make_transformer(layers, width)
    params = sum(p.numel() for p in model.parameters())
    modules = len(inspection.module_parameters(model))
    common = {"parameters": params, "modules": modules, "model_mb": round(params * 4 / 2 ** 20, 1)}
    edges: dict = {}
    records = []
    for name, known in (("layers.big_model_weights_first", False), ("layers.big_model_weights", True)):
        _, cost = _timed(lambda: inspection.summarize_all(inspection.module_parameters(model), edges))
        records.append({"scenario": name, **cost, **common, "edges_known": known,
                        "s_per_billion_params": round(cost["ms"] / 1000 / (params / 1e9), 2),
                        "cpu_s_per_billion_params": round(cost["cpu_ms"] / 1000 / (params / 1e9), 2)})
    tokens = torch.randn(16, 32, width, generator=torch.Generator().manual_seed(1))
    captured, cost = _timed(lambda: inspection.module_activations(model, tokens))
    records.append({"scenario": "layers.big_model_capture", **cost, **common, "sample": "16 x 32 tokens",
                    "leaf_modules": len(captured), "note": "one forward pass of the sample with every leaf hooked",
                    "captured_mb": round(sum(v.nbytes for _, v in captured.values()) / 2 ** 20, 1)})
    act_edges: dict = {}
    _, cost = _timed(lambda: inspection.summarize_all(captured, act_edges))
    records.append({"scenario": "layers.big_model_activations", **cost, **common, "sample": "16 x 32 tokens",
                    "leaf_modules": len(captured), "note": "first model: the kept outputs set the bins"})
    captured.clear()  # free the kept outputs before the streamed pass
    streamed, cost = _timed(lambda: inspection.module_activations(
        model, tokens, inspection.ActivationSummaries(len(tokens), act_edges)).finish())
    records.append({"scenario": "layers.big_model_activations_streamed", **cost, **common, "sample": "16 x 32 tokens",
                    "leaf_modules": len(streamed), "note": "later models: capture and summaries in one forward, "
                    "each output folded in as it comes"})
    return records
