"""PyTorch inspection: evaluation outputs, per-module weight stats and activation summaries.

Only the precompute step imports this module; the web app reads its results from the store.
"""
from __future__ import annotations

import zlib
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence, Union

import numpy as np
import torch

from cnc.evaluation import evaldata
from cnc.experiment.errors import TaskError

N_BINS = 40
SAMPLE_SIZE = 2048
STREAM = 1 << 22  # elements summarized at a time (16 MB of float32), whatever the tensor's size
FOLD = 1 << 16  # sampled activation values a module collects before they are folded into its summary


def resolve_device(spec: str = "auto") -> torch.device:
    """'auto' (a CUDA GPU, else Apple MPS, else the CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise TaskError(f"device '{spec}' is not valid; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TaskError(f"device '{spec}' asked for, but this machine has no usable CUDA GPU; use auto or cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise TaskError(f"device '{spec}': only {torch.cuda.device_count()} CUDA device(s) here.")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise TaskError(f"device '{spec}' asked for, but MPS is not available here; use auto or cpu.")
    elif device.type != "cpu":
        raise TaskError(f"device '{spec}' is not supported; use auto, cpu, cuda, cuda:N or mps.")
    return device


def run_model(model: torch.nn.Module, batches: Iterable[tuple[Any, np.ndarray]], labels: np.ndarray,
              sample_index: np.ndarray, device: torch.device,
              activations: ActivationSummaries | None = None,
              probs_buffer: np.ndarray | None = None) -> tuple[dict, np.ndarray, Any]:
    """One pass over the evaluation batches under inference_mode, on `device`.

    Returns (outputs, probs, activations): outputs = {"preds", "p_true", "p_pred"} per instance
    (argmax and probabilities taken in float32 before any rounding), probs = float16 [N, C]
    softmax, activations = leaf-module outputs on the rows of `sample_index` only (hooks run on a
    second forward of just those rows, so the other rows pay nothing for them): {name: (type,
    values)}, or, given an `ActivationSummaries`, that object with the outputs folded in.
    `probs` is written into `probs_buffer` when it has the right shape: a precompute run reuses
    one buffer model after model, instead of page-faulting in a fresh [N, C] matrix for each
    (up to 0.13 s per model of 50,000 x 1,000 in a profile; 0.04 s saved on average, measured A/B).
    """
    n = len(labels)
    model = model.to(device).eval()
    probs = preds = p_true = p_pred = None
    captured: dict[str, tuple[str, list]] = {}
    pos = 0
    with torch.inference_mode():
        for inputs, batch_labels in batches:
            b = len(batch_labels)
            if pos + b > n or not np.array_equal(batch_labels, labels[pos:pos + b]):
                raise TaskError(f"evaluation batches at instance {pos} do not match the task's labels "
                                "(is the data shuffled or non-deterministic? use shuffle=False)")
            x = evaldata.to_device(inputs, device)
            logits = evaldata.call(model, x)
            if logits.ndim != 2 or logits.shape[0] != b:
                raise TaskError(f"model outputs have shape {tuple(logits.shape)}; expected [{b}, classes]")
            p = torch.softmax(logits.float(), dim=-1)
            top_p, top = p.max(dim=-1)
            y = torch.as_tensor(batch_labels, device=p.device).clamp(0, p.shape[1] - 1)
            if probs is None:
                fits = probs_buffer is not None and probs_buffer.shape == (n, p.shape[1]) \
                    and probs_buffer.dtype == np.float16 and probs_buffer.flags.writeable
                probs = probs_buffer if fits else np.empty((n, p.shape[1]), dtype=np.float16)
                preds = np.empty(n, dtype=np.int16 if p.shape[1] < 2 ** 15 else np.int32)
                p_true, p_pred = np.empty(n, np.float32), np.empty(n, np.float32)
            torch.from_numpy(probs[pos:pos + b]).copy_(p)  # float32 -> float16 straight into place
            preds[pos:pos + b] = top.cpu().numpy()
            p_pred[pos:pos + b] = top_p.cpu().numpy()
            p_true[pos:pos + b] = p.gather(1, y[:, None])[:, 0].cpu().numpy()
            rows = sample_index[(sample_index >= pos) & (sample_index < pos + b)] - pos
            if rows.size:
                with leaf_hooks(model, captured, activations, rows.size):
                    evaldata.call(model, evaldata.take(x, rows))
            pos += b
    if pos != n:
        raise TaskError(f"evaluation batches held {pos} instances; the task's labels say {n}")
    if probs is None:
        raise TaskError("the evaluation set is empty")
    acts = activations if activations is not None else \
        {name: (kind, np.concatenate(parts)) for name, (kind, parts) in captured.items()}
    return {"preds": preds, "p_true": p_true, "p_pred": p_pred}, probs, acts


@contextmanager
def leaf_hooks(model: torch.nn.Module, captured: dict[str, tuple[str, list]],
                sink: ActivationSummaries | None = None, rows: int = 0):
    """Collect every leaf module's output (flattened, float32, CPU) while the block runs: into
    `captured`, or folded into `sink` (`rows`: instances in the block)."""
    hooks = []
    for name, module in model.named_modules():
        if not name or any(True for _ in module.children()):
            continue

        def hook(mod: torch.nn.Module, _inp: Any, out: Any, name: str = name) -> None:
            tensor = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(tensor, torch.Tensor):
                if tensor.is_quantized:
                    tensor = tensor.dequantize()
                values = tensor.detach().float().reshape(-1).cpu().numpy()
                if sink is not None:
                    sink.add(name, type(mod).__name__, values, rows)
                else:
                    captured.setdefault(name, (type(mod).__name__, []))[1].append(values)

        hooks.append(module.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def module_parameters(model: torch.nn.Module) -> dict[str, tuple[str, list[torch.Tensor]]]:
    """Per module (dotted name): its type and its own parameter tensors (not copied: summaries
    stream over them, `summarize`)."""
    found = {}
    for name, module in model.named_modules():
        own = [p.detach() for p in module.parameters(recurse=False)]
        if name and own:
            found[name] = (type(module).__name__, own)
    return found


def module_activations(model: torch.nn.Module, inputs: Any, into: ActivationSummaries | None = None) -> Any:
    """Outputs of every leaf module on one batch of inputs, flattened: {name: (type, values)}, or
    folded into `into` (returned) as precompute does once a task's bins are known."""
    captured: dict[str, tuple[str, list]] = {}
    model.eval()
    rows = len(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
    with torch.inference_mode(), leaf_hooks(model, captured, into, rows):
        evaldata.call(model, inputs)
    if into is not None:
        return into
    return {name: (kind, np.concatenate(parts)) for name, (kind, parts) in captured.items()}


Values = Union[np.ndarray, Sequence[torch.Tensor]]  # one array, or tensors read as one flattened array


def _count(values: Values) -> int:
    return int(values.size) if isinstance(values, np.ndarray) else sum(int(t.numel()) for t in values)


def _pieces(values: Values) -> Iterator[np.ndarray]:
    """The values, flattened and concatenated, as float32 arrays of at most STREAM elements: a
    big tensor is never copied whole (a float16 7B model is not turned into 28 GB of float32)."""
    parts = [values] if isinstance(values, np.ndarray) else values
    for part in parts:
        flat = part.reshape(-1)
        for s in range(0, flat.shape[0], STREAM):
            piece = flat[s:s + STREAM]
            if isinstance(piece, torch.Tensor):
                piece = piece.float().cpu().numpy()
            yield np.asarray(piece, dtype=np.float32)


def shared_edges(values: Values, bins: int = N_BINS) -> np.ndarray:
    """Bin edges from a reference model's values, padded so later models mostly fit inside."""
    lo, hi = np.inf, -np.inf
    for piece in _pieces(values):
        if piece.size:
            lo, hi = min(lo, float(piece.min())), max(hi, float(piece.max()))
    if lo > hi:
        return np.linspace(-1.0, 1.0, bins + 1)
    pad = (hi - lo) * 0.05 or max(abs(lo), 1e-3) * 0.1
    return np.linspace(lo - pad, hi + pad, bins + 1)


def sample_positions(name: str, count: int, k: int = SAMPLE_SIZE) -> np.ndarray:
    """Fixed element positions for a module: the same for every model with the same shape."""
    if count <= k:
        return np.arange(count)
    rng = np.random.default_rng(zlib.crc32(f"{name}:{count}".encode()))
    return np.sort(rng.choice(count, size=k, replace=False))


class RunningSummary:
    """One module's summary built from consecutive pieces of its flattened values: histogram over
    the shared `edges` (values outside fall in the end bins), zeros, the values at `positions` (a
    position past the final count is dropped) and float64 moments."""

    def __init__(self, kind: str, edges: np.ndarray, positions: np.ndarray):
        self.kind, self.edges, self.positions = kind, edges, positions
        bins = len(edges) - 1
        self.uniform = np.array_equal(edges, np.linspace(edges[0], edges[-1], bins + 1))  # then no sort
        self.hist = np.zeros(bins, np.int64)
        self.sample = np.empty(positions.size, np.float32)
        self.count, self.zeros, self.total, self.squares = 0, 0, 0.0, 0.0

    def add(self, piece: np.ndarray) -> None:
        start, end, edges = self.count, self.count + piece.size, self.edges
        clipped = np.clip(piece, edges[0], edges[-1])
        self.hist += np.histogram(clipped, bins=len(edges) - 1 if self.uniform else edges,
                                  range=(edges[0], edges[-1]) if self.uniform else None)[0]
        self.zeros += int(np.count_nonzero(piece == 0))
        self.total += float(piece.sum(dtype=np.float64))  # float64 sums, no BLAS (its threads spin when busy)
        self.squares += float(np.einsum("i,i->", piece, piece, dtype=np.float64))
        lo, hi = np.searchsorted(self.positions, [start, end])
        self.sample[lo:hi] = piece[self.positions[lo:hi] - start]
        self.count = end

    def result(self) -> dict:
        n = self.count
        mean = self.total / n if n else 0.0
        return {"type": self.kind, "count": n, "zeros": self.zeros, "edges": self.edges, "hist": self.hist,
                "sample": self.sample[:int(np.searchsorted(self.positions, n))], "l2": float(np.sqrt(self.squares)),
                "mean": mean, "std": float(np.sqrt(max(self.squares / n - mean * mean, 0.0))) if n else 0.0}


def summarize(name: str, kind: str, values: Values, edges: np.ndarray, positions: np.ndarray | None = None) -> dict:
    """A module's summary in one pass of STREAM-element pieces (`positions`: of the sample, by
    default the module's fixed ones for its element count)."""
    running = RunningSummary(kind, edges, sample_positions(name, _count(values)) if positions is None else positions)
    for piece in _pieces(values):
        running.add(piece)
    return running.result()


class ActivationSummaries:
    """Leaf-module outputs on the fixed sample, summarized as the batches come: a module whose
    shared bins are known (every model after a task's first) is folded into its running summary
    batch by batch, so memory does not grow with the sample or the layer widths; a module without
    bins yet (the task's first model) keeps its values until `finish`, when they set the bins.
    Sample positions follow from the first batch's values per instance times the sample size, the
    same rule in both cases (for fixed shapes: the module's fixed positions for its count)."""

    def __init__(self, sample_size: int, edges: dict[str, np.ndarray]):
        self.sample_size, self.edges = sample_size, edges  # `edges` gains the bins `finish` sets
        self.kinds: dict[str, str] = {}
        self.positions: dict[str, np.ndarray] = {}
        self.running: dict[str, RunningSummary] = {}
        self.kept: dict[str, list[np.ndarray]] = {}
        self.pending: dict[str, tuple[int, list[np.ndarray]]] = {}

    def add(self, name: str, kind: str, values: np.ndarray, rows: int) -> None:
        if name not in self.kinds:
            self.kinds[name] = kind
            self.positions[name] = sample_positions(name, values.size // max(rows, 1) * self.sample_size)
            if name in self.edges:
                self.running[name] = RunningSummary(kind, self.edges[name], self.positions[name])
        if name in self.running:
            count, parts = self.pending.get(name, (0, []))
            parts.append(values)
            self.pending[name] = (count + values.size, parts)
            if count + values.size >= FOLD:
                self._fold(name)
        else:
            self.kept.setdefault(name, []).append(values)

    def _fold(self, name: str) -> None:
        """Fold a module's pending values into its running summary: a few sampled rows per batch
        are collected first, so the histogram runs on FOLD values at a time, not on every batch."""
        _, parts = self.pending.pop(name, (0, []))
        if parts:
            for piece in _pieces(parts[0] if len(parts) == 1 else np.concatenate(parts)):
                self.running[name].add(piece)

    def finish(self) -> dict[str, dict]:
        out = {}
        for name, kind in self.kinds.items():
            if name in self.running:
                self._fold(name)
                out[name] = self.running[name].result()
                continue
            values = np.concatenate(self.kept.pop(name))
            self.edges[name] = shared_edges(values)
            out[name] = summarize(name, kind, values, self.edges[name], self.positions[name])
        return out


def summarize_all(found: dict[str, tuple[str, Values]], edges: dict[str, np.ndarray]) -> dict[str, dict]:
    """Summaries per module; modules without shared edges yet get edges from these values
    (the first model of a task sets them for every later one). `edges` is updated in place."""
    out = {}
    for name, (kind, values) in found.items():
        if name not in edges:
            edges[name] = shared_edges(values)
        out[name] = summarize(name, kind, values, edges[name])
    return out
