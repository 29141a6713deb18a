"""Generative precompute on small real language models: its time against bare generation, the bytes
it stores per model, and the error of the top-k KL approximation against the exact KL.

The models: a small causal transformer (pre-norm, LayerNorms, tied positions) trained here for a
few seconds on a synthetic Markov language (each word has 8 Zipf-weighted successors, so trained
distributions are peaked as a real LM's are, with a long thin tail), then compressed: global
magnitude pruning of 10/30/50 % of all weights (norms included) and simulated per-row int8 / int4
weight rounding. Prompts and references are sampled from the same language. `--quick`: vocabulary
1,024, 48 prompts; full: vocabulary 4,096, 128 prompts (real-size figures are issue 23's). Torch
runs on one thread throughout (on a shared 2-core machine more threads than free cores is slower).

Records: `generative.generate` (bare greedy generation of every prompt, one model), 
`generative.precompute` (per model: generation + scoring + teacher-forced pass + top-k/KL + layer
summaries), `generative.bytes` (stored per model and for the root's top-k), `generative.kl_error`
(per compressed model and k: the top-k KL vs the exact KL per token); then, with transformers
installed, the real-size run through the Hugging Face adapter (cnc.bench.generative_scale,
records `generative.real.*`).
"""
from __future__ import annotations

import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnc.analysis.token_divergence import TOPK, coarse_kl, exact_kl, tail_logmass, topk_summary

SUCCESSORS = 8
DIM, LAYERS, HEADS, CONTEXT = 64, 2, 4, 64
PROMPT_WORDS, REFERENCE_WORDS = 12, 6


def language(vocab: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(successors [V, S], their probabilities [V, S]): a random sparse bigram language."""
    rng = np.random.default_rng(seed)
    succ = np.stack([rng.choice(vocab, SUCCESSORS, replace=False) for _ in range(vocab)])
    weights = 1.0 / np.arange(1, SUCCESSORS + 1) ** 1.2
    return succ, np.broadcast_to(weights / weights.sum(), succ.shape)


def sample(succ: np.ndarray, probs: np.ndarray, count: int, length: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((count, length), np.int64)
    out[:, 0] = rng.integers(0, len(succ), count)
    for t in range(1, length):
        pick = (rng.random(count)[:, None] > np.cumsum(probs[out[:, t - 1]], 1)).sum(1).clip(0, SUCCESSORS - 1)
        out[:, t] = succ[out[:, t - 1], pick]
    return out


class SmallLM(nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, DIM), nn.Embedding(CONTEXT, DIM)
        layer = nn.TransformerEncoderLayer(DIM, HEADS, 4 * DIM, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.norm, self.head = nn.LayerNorm(DIM), nn.Linear(DIM, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=ids.device)
        h = self.embed(ids) + self.pos(torch.arange(t, device=ids.device))
        return self.head(self.norm(self.blocks(h, mask=mask, is_causal=True)))


def train(vocab: int, steps: int, seed: int = 0) -> SmallLM:
    """Fit the language's next-word distributions (soft targets: fast, low-variance training);
    after 300 steps at vocabulary 1,024 the mean entropy is ~1.9 nats and ~2.5 % of the mass lies
    beyond the top 32, the regime of a real LM's typical tokens."""
    torch.manual_seed(seed)
    succ, probs = language(vocab)
    target = torch.zeros(vocab, vocab).scatter_(1, torch.as_tensor(succ), torch.as_tensor(np.ascontiguousarray(probs), dtype=torch.float32))
    rng = np.random.default_rng(seed + 1)
    model = SmallLM(vocab)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        batch = torch.as_tensor(sample(succ, probs, 16, 24, rng))
        loss = -(target[batch] * torch.log_softmax(model(batch), -1)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def compressed(model: SmallLM, how: str) -> SmallLM:
    """Global magnitude pruning ("prune 0.3") over all weights, or per-row weight rounding ("int8")."""
    out = SmallLM(model.head.out_features)
    out.load_state_dict(model.state_dict())
    params = [p for p in out.parameters()]
    with torch.no_grad():
        if how.startswith("prune"):
            flat = torch.cat([p.abs().flatten() for p in params])
            cut = flat.kthvalue(max(1, int(float(how.split()[1]) * flat.numel()))).values
            for p in params:
                p[p.abs() <= cut] = 0
        else:
            levels = 2 ** (int(how[3:]) - 1) - 1
            for p in params:
                if p.ndim == 2:
                    scale = p.abs().amax(1, keepdim=True).clamp_min(1e-12) / levels
                    p.copy_((p / scale).round().clamp(-levels, levels) * scale)
    return out.eval()


class BenchTask:
    """The generative task protocol over the synthetic language (words "w12"; docs/generative.md)."""

    kind = "generative"

    def __init__(self, vocab: int = 2048, n: int = 48, max_new_tokens: int = 8):
        self.vocab = vocab
        self.generation = {"max_new_tokens": max_new_tokens, "stop": []}
        seqs = sample(*language(vocab), n, PROMPT_WORDS + REFERENCE_WORDS, np.random.default_rng(7))
        self.prompts = [self.text(s[:PROMPT_WORDS]) for s in seqs]
        self.references = [[self.text(s[PROMPT_WORDS:])] for s in seqs]

    @staticmethod
    def text(ids) -> str:
        return " ".join(f"w{int(i)}" for i in ids)

    def ids(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([[int(w[1:]) for w in t.split()] for t in texts])

    def load_model(self, checkpoint: str) -> SmallLM:
        model = SmallLM(self.vocab)
        model.load_state_dict(torch.load(checkpoint, weights_only=True))
        return model.eval()

    def eval_data(self):
        return self.prompts, self.references

    def attributes(self):
        return {}

    def render_instance(self, index: int) -> dict:
        return {"kind": "text", "text": self.prompts[index]}

    def generate(self, model: SmallLM, prompts: list[str], max_new_tokens: int) -> list[str]:
        ids = self.ids(prompts).to(next(model.parameters()).device)  # prompts have equal length here
        start = ids.shape[1]
        for _ in range(max_new_tokens):
            ids = torch.cat([ids, model(ids[:, -CONTEXT:])[:, -1].argmax(-1, keepdim=True)], 1)
        return [self.text(row) for row in ids[:, start:].tolist()]

    def reference_logits(self, model: SmallLM, prompts: list[str], references: list[str]):
        p, r = self.ids(prompts), self.ids(references)
        ids = torch.cat([p, r], 1).to(next(model.parameters()).device)
        logits = model(ids)[:, p.shape[1] - 1:-1]
        return logits, r.to(ids.device), torch.ones_like(r, dtype=torch.bool, device=ids.device)


VARIANTS = ("prune 0.1", "prune 0.3", "prune 0.5", "int8", "int4")


def _experiment(folder: Path, vocab: int, n: int, steps: int) -> tuple[Path, float]:
    from cnc.experiment.tracker import Tracker

    t0 = time.perf_counter()
    base = train(vocab, steps)
    train_ms = (time.perf_counter() - t0) * 1000
    t = Tracker(folder / "exp", task="cnc.bench.generative:BenchTask", task_options={"vocab": vocab, "n": n})
    t.log_model("base", model=base)
    for how in VARIANTS:
        t.log_model(how, base="base", model=compressed(base, how))
    return folder / "exp", train_ms


def _kl_errors(task: BenchTask, base: SmallLM, model: SmallLM, how: str) -> list[dict]:
    with torch.inference_mode():
        ref = torch.log_softmax(task.reference_logits(base, task.prompts, [r[0] for r in task.references])[0], -1)
        own = torch.log_softmax(task.reference_logits(model, task.prompts, [r[0] for r in task.references])[0], -1)
    ref = ref.reshape(-1, ref.shape[-1]).double().numpy()
    own = own.reshape(-1, own.shape[-1]).double().numpy()
    exact = exact_kl(ref, own)
    records = []
    for k in (8, TOPK, 128):
        t0 = time.perf_counter()
        vals, ids, tail = topk_summary(ref, k)
        approx = coarse_kl(vals, tail, np.take_along_axis(own, ids.astype(np.int64), -1), tail_logmass(own, ids))
        ms = (time.perf_counter() - t0) * 1000
        rel = np.abs(approx - exact) / np.maximum(exact, 1e-12)
        records.append({"scenario": "generative.kl_error", "ms": round(ms, 2), "model": how, "k": k,
                        "tokens": int(exact.size), "exact_mean": round(float(exact.mean()), 5),
                        "approx_mean": round(float(approx.mean()), 5),
                        "mean_rel_err_pct": round(100 * float(1 - approx.mean() / exact.mean()), 2),
                        "token_rel_err_median_pct": round(100 * float(np.median(rel)), 2),
                        "token_rel_err_p99_pct": round(100 * float(np.percentile(rel, 99)), 2),
                        "exact_p99": round(float(np.percentile(exact, 99)), 4),
                        "approx_p99": round(float(np.percentile(approx, 99)), 4),
                        "ref_tail_mass_mean": round(float(np.exp(tail).mean()), 4)})
    return records


def scenarios(quick: bool) -> list[dict]:
    vocab, n, steps = (1024, 48, 300) if quick else (4096, 128, 600)
    records = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: more threads than free cores is far slower
    try:
        _run(vocab, n, steps, records)
        records.extend(_real_size(quick))
    finally:
        torch.set_num_threads(threads)
    return records


def _real_size(quick: bool) -> list[dict]:
    """Issue 23's run through the Hugging Face adapter (cnc.bench.generative_scale), when
    transformers is installed: 8 models x 2,000 prompts x 64 tokens, 32,000-token vocabulary."""
    try:
        import transformers  # noqa: F401
    except ImportError:
        return []
    from cnc.bench import generative_scale

    return generative_scale.scenarios(quick)


def _run(vocab: int, n: int, steps: int, records: list[dict]) -> None:
    from cnc.experiment.config import load_config
    from cnc.precompute.run import precompute
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext

    with tempfile.TemporaryDirectory(prefix="cnc-generative-") as tmp:
        folder = Path(tmp)
        exp, train_ms = _experiment(folder, vocab, n, steps)
        cfg = load_config(exp, cache_dir=folder / "cache")
        task = BenchTask(vocab, n)
        base = task.load_model(str(exp / cfg.experiment.models["base"].checkpoint))
        t0 = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, n, 256):
                task.generate(base, task.prompts[s:s + 256], task.generation["max_new_tokens"])
        gen_ms = (time.perf_counter() - t0) * 1000
        records.append({"scenario": "generative.generate", "ms": round(gen_ms, 1), "prompts": n, "vocab": vocab,
                        "new_tokens": task.generation["max_new_tokens"], "train_ms": round(train_ms)})
        store = SummaryStore(cfg.cache_dir)
        t0 = time.perf_counter()
        report = precompute(cfg, store, progress=False)
        pre_ms = (time.perf_counter() - t0) * 1000
        assert not report.failed, report.failed
        models = len(report.computed)
        records.append({"scenario": "generative.precompute", "ms": round(pre_ms / models, 1), "models": models,
                        "prompts": n, "vocab": vocab, "total_ms": round(pre_ms),
                        "ratio_to_generate": round(pre_ms / models / gen_ms, 2)})
        ctx = AppContext(cfg, store)
        size = lambda value: len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: E731
        th, root_ch = ctx.task_hash, store.file_hash(cfg.experiment.models["base"].checkpoint)
        out = ctx.outputs("prune 0.3")
        disk = sum(f.stat().st_size for f in (folder / "cache").rglob("*") if f.is_file())
        records.append({"scenario": "generative.bytes", "ms": 0.0, "prompts": n, "vocab": vocab,
                        "ref_tokens": int(out["ntokens"].sum()), "outputs_bytes": size(out),
                        "params_bytes": size(ctx.params("prune 0.3")),
                        "activations_bytes": size(ctx.activations("prune 0.3")),
                        "root_topk_bytes": size(store.get("topk", th, root_ch)),
                        "cache_dir_bytes_per_model": disk // models})
        for how in VARIANTS:
            model = task.load_model(str(cfg.experiment.models[how].checkpoint))
            records.extend(_kl_errors(task, base, model, how))
            stored = ctx.outputs(how)["kl"].astype(np.float64)
            records[-1]["stored_mean"] = round(float(stored.mean()), 5)
