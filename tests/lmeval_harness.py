"""Real lm-evaluation-harness output folders for tests: tiny Hugging Face models, built offline.

A word-level tokenizer trained in code, a 2-layer GPT-2 trained for a few seconds on small sums
("3 plus 4 is 7"), two compressed copies (magnitude-pruned, int8-rounded weights), all saved with
`save_pretrained`; then `lm_eval` (the real CLI, in a subprocess, offline) evaluates each on two
local tasks written in the harness's own YAML format over a local JSON file: one generate_until
task and one multiple_choice task. Nothing is downloaded.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NUMBERS = list(range(7))
GEN_TASK, MC_TASK = "tiny_sums_gen", "tiny_sums_mc"
VARIANTS = ("base", "pruned", "int8")


def documents() -> list[dict]:
    """Every sum and difference of two digits whose answer is 0..18; `subject` is a subgroup field."""
    docs = []
    for a in NUMBERS:
        for b in NUMBERS:
            for op, subject, value in (("plus", "addition", a + b), ("minus", "subtraction", a - b)):
                if value < 0:
                    continue
                wrong = [(value + d) % 13 for d in (1, 2, 5)]
                choices = [str(v) for v in sorted({value, *wrong})]
                docs.append({"question": f"{a} {op} {b} is", "answer": str(value), "subject": subject,
                             "choices": choices, "label": choices.index(str(value))})
    return docs


def _tokenizer(folder: Path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<unk>", "<eos>", "plus", "minus", "is"] + [str(v) for v in range(13)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(folder)
    return fast


def _train(tokenizer, docs: list[dict], steps: int = 200):
    """Full-batch AdamW on the answers (and the end token) only: ~10 s on one busy core."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=16, n_embd=64, n_layer=2, n_head=2,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    model = GPT2LMHeadModel(config)
    ids = torch.tensor([tokenizer.encode(f"{d['question']} {d['answer']} <eos>") for d in docs])
    labels = ids.clone()
    labels[:, :4] = -100  # "a plus b is": the prompt is not learned
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _compressed(model, how: str):
    """A copy with every 2-D weight magnitude-pruned (50%) or rounded to 8-bit per-tensor steps."""
    import copy

    import torch

    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in out.named_parameters():
            if p.ndim != 2 or "wpe" in name:
                continue
            if how == "pruned":
                p[p.abs() <= p.abs().flatten().quantile(0.5)] = 0
            else:
                scale = p.abs().max() / 127
                p.copy_(torch.round(p / scale).clamp(-127, 127) * scale)
    return out


def task_yamls(folder: Path, data_file: Path) -> Path:
    """The two tasks in the harness's YAML format (its `--include_path`)."""
    folder.mkdir(parents=True, exist_ok=True)
    common = (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data_file}\n"
              "test_split: test\ndoc_to_text: \"{{question}}\"\n")
    (folder / f"{GEN_TASK}.yaml").write_text(
        f"task: {GEN_TASK}\n{common}output_type: generate_until\ndoc_to_target: \"{{{{answer}}}}\"\n"
        "generation_kwargs:\n  until: [\"<eos>\"]\n  max_gen_toks: 3\n  do_sample: false\n"
        "filter_list:\n  - name: strict-match\n    filter:\n"
        "      - function: regex\n        regex_pattern: \"^\\\\s*(\\\\d+)\"\n      - function: take_first\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
        "metadata:\n  version: 1.0\n")
    (folder / f"{MC_TASK}.yaml").write_text(
        f"task: {MC_TASK}\n{common}output_type: multiple_choice\ndoc_to_choice: \"{{{{choices}}}}\"\n"
        "doc_to_target: \"{{label}}\"\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n"
        "metadata:\n  version: 1.0\n")
    return folder


def offline_env(root: Path) -> dict:
    """No network, and the datasets cache inside `root` (nothing written to the user's home)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": str(root / "hf-home"), "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def run_harness(model_dir: Path, tasks_dir: Path, out_dir: Path, root: Path) -> None:
    """`lm_eval` exactly as a user types it (the installed CLI, via this interpreter)."""
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf",
           "--model_args", f"pretrained={model_dir},dtype=float32",
           "--tasks", f"{GEN_TASK},{MC_TASK}", "--include_path", str(tasks_dir), "--device", "cpu",
           "--batch_size", "16", "--log_samples", "--output_path", str(out_dir)]
    done = subprocess.run(cmd, env=offline_env(root), capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"lm_eval failed ({done.returncode}):\n{done.stderr[-4000:]}")


def build(root: Path) -> dict[str, Path]:
    """Models, tasks and one harness output folder per variant under `root`: {variant: folder}."""
    docs = documents()
    root.mkdir(parents=True, exist_ok=True)
    data_file = root / "sums.json"
    data_file.write_text(json.dumps(docs))
    tasks_dir = task_yamls(root / "tasks", data_file)
    base_dir = root / "models" / "base"
    tokenizer = _tokenizer(base_dir)
    base = _train(tokenizer, docs)
    outs = {}
    for variant in VARIANTS:
        model_dir = root / "models" / variant
        model = base if variant == "base" else _compressed(base, variant)
        model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        outs[variant] = root / "out" / variant
        run_harness(model_dir, tasks_dir, outs[variant], root)
    return outs


def build_once(root: Path) -> dict[str, Path]:
    """`build` in a child process (one torch thread: the machine is shared), skipped when `root`
    already holds a finished build (CNC_TEST_CACHE keeps one across test sessions)."""
    done = root / "built.json"
    if not done.exists():
        subprocess.run([sys.executable, __file__, str(root)], env=offline_env(root), check=True, timeout=1800)
    return {k: Path(v) for k, v in json.loads(done.read_text()).items()}


if __name__ == "__main__":  # python tests/lmeval_harness.py /tmp/lmeval-demo
    import torch

    torch.set_num_threads(1)
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "lmeval-demo").resolve()
    outs = build(folder)
    (folder / "built.json").write_text(json.dumps({k: str(v) for k, v in outs.items()}))
