"""Generative models at real size: 8 language models x 2,000 prompts x 64 generated tokens, with a
32,000-token vocabulary, through the Hugging Face task adapter and the real precompute.

The models are small real `transformers` Llamas built from a config (2 layers, 16-wide, the
32,000 x 16 embedding tied to the output projection, initialized with a wide spread so that
next-token distributions are peaked like a trained LM's, ~4 nats of entropy), saved with
`save_pretrained` beside a word-level tokenizer made in code; seven weight-only variants
(magnitude-pruned, int8/int4-rounded) are safetensors state dicts. Prompts are synthetic
word sequences. Nothing is downloaded.

Records (area `generative`, after cnc.bench.generative's own): generative.real.bare_generation /
generative.real.precompute (per model, wall and CPU time of this process, their ratios: on a
shared machine the CPU ratio is the steadier one), generative.real.cache_bytes (bytes on
disk per model and per 1,000 instances), generative.real.kl_error (the stored top-k + tail KL
against the exact KL from full log-probabilities), and from a fresh serving process:
generative.real.first_open, .switch, .switch_subgroups, .sort, .instance and .peak_rss_mb.
`--quick` runs the same pipeline at toy size (3 models x 48 prompts x 8 tokens, 2,000 words);
without transformers installed the area skips this part.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]  # 70 syllables


@dataclass(frozen=True)
class Size:
    models: int
    prompts: int
    new_tokens: int
    vocab: int
    batch: int
    kl_sample: int
    bare_models: int  # models timed for bare generation (the base and the first variants)


FULL = Size(models=8, prompts=2000, new_tokens=64, vocab=32_000, batch=128, kl_sample=256, bare_models=3)
QUICK = Size(models=3, prompts=48, new_tokens=8, vocab=2_000, batch=16, kl_sample=16, bare_models=3)


def words(vocab: int) -> list[str]:
    """`vocab - 4` distinct pronounceable words (one, two or three syllables)."""
    out: list[str] = []
    n = len(SYLLABLES)
    for i in range(vocab - 4):
        w, k = "", i
        while True:
            w += SYLLABLES[k % n]
            k = k // n - 1
            if k < 0:
                break
        out.append(w)
    return out


def tokenizer(vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    table = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    table.update({w: i + 4 for i, w in enumerate(words(vocab))})
    tok = Tokenizer(models.WordLevel(vocab=table, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def base_model(vocab: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, initializer_range=1.0, pad_token_id=0, bos_token_id=1,
                         eos_token_id=2)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def prune(model: torch.nn.Module, amount: float) -> torch.nn.Module:
    """Magnitude pruning of each linear layer's weights (not the embedding), in place."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and m.weight is not model.get_input_embeddings().weight:
                w = m.weight
                w[w.abs() <= w.abs().flatten().kthvalue(max(1, int(amount * w.numel()))).values] = 0
    return model


def round_weights(model: torch.nn.Module, bits: int) -> torch.nn.Module:
    """Symmetric per-row rounding of every 2-D weight to `bits` bits, stored dequantized, in place."""
    top = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                scale = p.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / top
                p.copy_((p / scale).round().clamp(-top, top) * scale)
    return model


VARIANTS = {"p10": lambda m: prune(m, 0.1), "p30": lambda m: prune(m, 0.3), "q8": lambda m: round_weights(m, 8),
            "p50": lambda m: prune(m, 0.5), "q4": lambda m: round_weights(m, 4),
            "p30q8": lambda m: round_weights(prune(m, 0.3), 8), "p70": lambda m: prune(m, 0.7)}


def instances(size: Size, seed: int = 0) -> list[dict]:
    """Synthetic prompts of 8-24 Zipf-distributed words, references of 1-6 words."""
    rng = np.random.default_rng(seed)
    vocab = words(size.vocab)
    cdf = np.cumsum(1.0 / np.arange(1, len(vocab) + 1))
    draw = lambda k: " ".join(vocab[i] for i in np.searchsorted(cdf, rng.random(k) * cdf[-1]))  # noqa: E731
    out = []
    for i in range(size.prompts):
        length = int(rng.integers(8, 25))
        prompt, answer = draw(length), draw(int(rng.integers(1, 7)))
        out.append({"prompt": prompt, "answers": [answer],
                    "length": "long" if length > 16 else "short", "topic": "abc"[i % 3]})
    return out


def build(folder: Path, size: Size) -> Path:
    """Base directory, weight-only variants, data, experiment and config; returns the config path."""
    import copy

    from cnc.evaluation.hf_task import save_weights

    base_dir = folder / "base"
    model = base_model(size.vocab)
    model.save_pretrained(base_dir)
    tokenizer(size.vocab).save_pretrained(base_dir)
    lines = ["models:", "  - {id: base, checkpoint: base}"]
    for name in list(VARIANTS)[:size.models - 1]:
        variant = VARIANTS[name](copy.deepcopy(model))
        save_weights(variant, folder / f"{name}.safetensors")
        lines.append(f"  - {{id: {name}, base: base, checkpoint: {name}.safetensors, operation: {{name: '{name}'}}}}")
    (folder / "exp.yaml").write_text("\n".join(lines) + "\n")
    with open(folder / "data.jsonl", "w") as fh:
        for item in instances(size):
            fh.write(json.dumps(item) + "\n")
    options = {"model_dir": str(base_dir), "data": str(folder / "data.jsonl"), "max_new_tokens": size.new_tokens}
    cfg = folder / "cfg.yaml"
    cfg.write_text(f"experiment: exp.yaml\ntask: {{entry: 'cnc.evaluation.hf_task:HFTask', options: "
                   f"{json.dumps(options)}, batch_size: {size.batch}, activation_sample: 64, device: cpu}}\n")
    return cfg


def checkpoints(folder: Path) -> list[str]:
    return [str(folder / "base")] + sorted(str(p) for p in folder.glob("*.safetensors"))


def bare_generation_s(task, paths: list[str], size: Size) -> tuple[float, float]:
    """(wall, CPU) seconds per model to load it and generate every prompt's continuation, nothing
    else (on a few of the models: all generate the same number of tokens, so the time per model
    barely varies), after a warm-up that imports transformers and loads the tokenizer (precompute,
    timed next, finds them loaded too)."""
    prompts, _ = task.eval_data()
    with torch.inference_mode():
        task.generate(task.load_model(paths[0]), prompts[:2], 2)
    t0, c0 = time.perf_counter(), time.process_time()
    for path in paths:
        model = task.load_model(path)
        with torch.inference_mode():
            for s in range(0, len(prompts), size.batch):
                task.generate(model, prompts[s:s + size.batch], size.new_tokens)
    return (time.perf_counter() - t0) / len(paths), (time.process_time() - c0) / len(paths)


def kl_error(task, ctx, paths: dict[str, str], size: Size) -> dict:
    """The stored KL (top-k + tail bins, float16) against the exact KL over the whole vocabulary,
    per reference token of the first `kl_sample` instances, for every variant; a batch of
    vocabulary-sized log-probabilities at a time. Also the reference's entropy and the mass its
    top-k leave in the tail (what the approximation cannot see)."""
    from cnc.analysis.token_divergence import TOPK, exact_kl

    prompts, references = task.eval_data()
    prompts, refs = prompts[:size.kl_sample], [r[0] for r in references[:size.kl_sample]]
    models = {mid: task.load_model(path) for mid, path in paths.items()}
    exact: dict[str, list[np.ndarray]] = {mid: [] for mid in paths if mid != "base"}
    entropy, tail = [], []
    with torch.inference_mode():
        for s in range(0, len(prompts), size.batch):
            chunk = (prompts[s:s + size.batch], refs[s:s + size.batch])

            def logprobs(model) -> np.ndarray:
                logits, _, mask = task.reference_logits(model, *chunk)
                return torch.log_softmax(logits, -1)[mask].double().numpy()

            base = logprobs(models["base"])
            entropy.append(-(np.exp(base) * base).sum(-1))
            tail.append(1.0 - np.exp(np.sort(base, axis=-1)[:, -TOPK:]).sum(-1))
            for mid in exact:
                exact[mid].append(exact_kl(base, logprobs(models[mid])))
    per_model = {mid: np.concatenate(parts) for mid, parts in exact.items()}
    stored = {mid: np.asarray(ctx.outputs(mid)["kl"][:len(e)], dtype=np.float64) for mid, e in per_model.items()}
    exact_all, stored_all = np.concatenate(list(per_model.values())), np.concatenate(list(stored.values()))
    err = exact_all - stored_all
    return {"tokens": int(exact_all.size), "mean_exact_kl": round(float(exact_all.mean()), 5),
            "mean_stored_kl": round(float(stored_all.mean()), 5),
            "mean_rel_error": round(float(err.sum() / exact_all.sum()), 4),
            "p50_abs_error": round(float(np.median(np.abs(err))), 5),
            "p99_abs_error": round(float(np.percentile(np.abs(err), 99)), 5),
            "per_model_rel_error": {mid: round(float((e - stored[mid]).sum() / e.sum()), 4)
                                    for mid, e in per_model.items()},
            "per_model_exact_kl": {mid: round(float(e.mean()), 4) for mid, e in per_model.items()},
            "base_entropy_nats": round(float(np.concatenate(entropy).mean()), 2),
            "base_tail_mass_beyond_topk": round(float(np.concatenate(tail).mean()), 3)}


def serve(config: str, cache: str) -> list[dict]:
    """The serving half, in a fresh process with the cache files dropped from the page cache:
    Behaviors first open (its default view), switch and sort, one instance's outputs panel."""
    from cnc.analysis.behavior_view import ViewState
    from cnc.app.cli import load
    from cnc.bench import drop_page_cache, median_ms, peak_rss_mb
    from cnc.bench.behaviors import open_view
    from cnc.ui.behaviors_detail import detail_panel
    from cnc.ui.behaviors_state import defaults

    drop_page_cache(Path(cache))
    ctx = load(config, cache, precompute=False, progress=False)
    models = list(ctx.experiment.models)
    records: list[dict] = []

    def timed(name: str, fn, repeat: int = 1) -> None:
        records.append({"scenario": f"generative.real.{name}", "ms": median_ms(fn, repeat, warmup=0)})

    first: list = []
    timed("first_open", lambda: first.extend(defaults(ctx, models)) or open_view(
        ctx, models, ViewState(mode=first[0], metric=first[1]), clear=False))
    timed("switch", lambda: open_view(ctx, models, ViewState(mode="instances", metric="kl")), 3)
    timed("switch_subgroups", lambda: open_view(ctx, models, ViewState(mode="subgroups", attribute="length",
                                                                         metric=first[1])), 3)
    timed("sort", lambda: open_view(ctx, models, ViewState(mode="instances", metric="kl", sort=models[-1])), 3)
    timed("instance", lambda: json.dumps(detail_panel(ctx, models, 1234 % len(ctx.task_data()["prompts"])),
                                         default=lambda c: c.to_plotly_json()))
    records.append({"scenario": "generative.real.peak_rss_mb", "ms": 0.0,
                    "peak_rss_mb": peak_rss_mb()})
    return records


def stored_parts(ctx, models: list[str], size: Size) -> dict:
    """Where the bytes go (pickled sizes, averaged over models): per-instance outputs, the per-model
    layer summaries (weights and activations: a fixed cost), and the root's top-k (once)."""
    import pickle

    def mean_size(get) -> int:
        return int(np.mean([len(pickle.dumps(get(m), protocol=pickle.HIGHEST_PROTOCOL)) for m in models]))

    root_topk = ctx.store.get("topk", ctx.task_hash, ctx.store.file_hash(ctx.experiment.models["base"].checkpoint))
    return {"outputs_bytes": mean_size(ctx.outputs), "outputs_mb_per_1000": round(
                mean_size(ctx.outputs) / size.prompts * 1000 / 1e6, 3),
            "layer_summaries_bytes": mean_size(ctx.params) + mean_size(ctx.activations),
            "root_topk_bytes": len(pickle.dumps(root_topk, protocol=pickle.HIGHEST_PROTOCOL))}


def _say(text: str) -> None:
    print(f"[generative] {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def cache_bytes(cache: Path) -> int:
    return sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())


def scenarios(quick: bool) -> list[dict]:
    """Build, bare generation, precompute, disk bytes and KL error here; the views in a fresh process."""
    from cnc.app.cli import load
    from cnc.evaluation.hf_task import HFTask
    from cnc.experiment.config import load_config
    from cnc.precompute.run import precompute
    from cnc.precompute.store import SummaryStore

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    size = QUICK if quick else FULL
    shape = {"models": size.models, "n": size.prompts, "new_tokens": size.new_tokens, "vocab": size.vocab}
    with tempfile.TemporaryDirectory(prefix="cnc-genscale-") as tmp:
        folder = Path(tmp)
        cfg_path = build(folder, size)
        cfg = load_config(cfg_path, cache_dir=folder / "cache")
        options = dict(cfg.task.options)
        task = HFTask(**options)
        paths = checkpoints(folder)
        _say(f"bare generation: {size.bare_models} models x {size.prompts} prompts x {size.new_tokens} tokens")
        bare, bare_cpu = bare_generation_s(task, paths[:size.bare_models], size)
        _say(f"precompute: {len(paths)} models ({bare:.1f} s per model bare)")
        t0, c0 = time.perf_counter(), time.process_time()
        report = precompute(cfg, SummaryStore(cfg.cache_dir), progress=False)
        per_model, per_model_cpu = (time.perf_counter() - t0) / len(paths), (time.process_time() - c0) / len(paths)
        assert not report.failed, report.failed
        on_disk = cache_bytes(folder / "cache") / len(paths)
        records = [
            {"scenario": "generative.real.bare_generation", "ms": round(bare * 1000, 1), **shape,
             "cpu_ms": round(bare_cpu * 1000, 1)},
            {"scenario": "generative.real.precompute", "ms": round(per_model * 1000, 1), **shape,
             "ratio_to_generation": round(per_model / bare, 2), "cpu_ms": round(per_model_cpu * 1000, 1),
             "cpu_ratio_to_generation": round(per_model_cpu / bare_cpu, 2)},
            {"scenario": "generative.real.cache_bytes", "ms": 0.0, **shape, "bytes_per_model": int(on_disk),
             "mb_per_1000_instances": round(on_disk / size.prompts * 1000 / 1e6, 3)},
        ]
        _say(f"KL error on {size.kl_sample} prompts; then the serving process")
        ctx = load(str(cfg_path), str(folder / "cache"), precompute=False, progress=False)
        ids = {m: p for m, p in zip(["base"] + sorted(list(VARIANTS)[:size.models - 1]), paths)}
        records[-1].update(stored_parts(ctx, list(ids), size))
        records.append({"scenario": "generative.real.kl_error", "ms": 0.0, **shape, **kl_error(task, ctx, ids, size)})
        code = ("import json, sys; from cnc.bench.generative_scale import serve; "
                "print(json.dumps(serve(sys.argv[1], sys.argv[2])))")
        done = subprocess.run([sys.executable, "-c", code, str(cfg_path), str(folder / "cache")],
                              capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2])
        served = json.loads(done.stdout.strip().splitlines()[-1])
        return records + [{**r, **shape} for r in served]
