"""Tiny Hugging Face language models for tests, built from configs and saved offline.

A causal LM (GPT-2 config, a byte-level BPE tokenizer with no pad token, like GPT-2's) and a
seq2seq LM (T5 config, a word-level tokenizer), each with a tokenizer trained here in code, saved
with save_pretrained; two weight-only variants of each (magnitude-pruned, int8-rounded) stored as
safetensors state dicts; and a JSONL file of question/answer instances. Nothing is downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = ("the a cat dog bird sat ran flew on under mat tree sky red blue green big small what where "
         "who is color of capital paris france rome italy Answer Question : yes no").split()
COLORS = ["red", "blue", "green"]


def corpus() -> list[str]:
    rows = []
    for i, w in enumerate(WORDS):
        rows.append(" ".join(WORDS[i:] + WORDS[:i]))
    return rows * 4


def instances(n: int = 10) -> list[dict]:
    """Question/answer instances with a categorical attribute and an identifier field."""
    out = []
    for i in range(n):
        animal = ["cat", "dog", "bird"][i % 3]
        color = COLORS[i % 3]
        out.append({"id": f"q{i}", "question": f"what color is the {animal} {'on the mat' if i % 2 else ''}".strip(),
                    "answers": [f"{color} {animal}" if i % 4 == 0 else color, color],
                    "type": "short" if i % 2 else "long"})
    return out


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(it) for it in items) + "\n")
    return path


def bpe_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")


def word_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.train_from_iterator(corpus(), trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def build_causal(folder: Path, seed: int = 0) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = bpe_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=4,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return _trained_and_saved(GPT2LMHeadModel, config, tokenizer, folder, seed)


def build_seq2seq(folder: Path, seed: int = 0) -> Path:
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = word_tokenizer()
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                      num_heads=4, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return _trained_and_saved(T5ForConditionalGeneration, config, tokenizer, folder, seed)


def _trained_and_saved(model_class, config, tokenizer, folder: Path, seed: int) -> Path:
    """A model of `model_class` built from `config` (seeded), briefly trained, saved with its tokenizer."""
    torch.manual_seed(seed)
    model = model_class(config)
    _train(model, tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _train(model: torch.nn.Module, tokenizer, steps: int = 40) -> None:
    """A few optimizer steps on the question/answer instances, so that outputs are words (not a
    random model's noise) and greedy choices have clear margins."""
    items = instances(12)
    prompts = [f"Question: {it['question']}\nAnswer:" for it in items]
    answers = [it["answers"][0] for it in items]
    seq2seq = model.config.is_encoder_decoder
    if seq2seq:
        enc = tokenizer(prompts, return_tensors="pt", padding=True)
        labels = tokenizer(answers, return_tensors="pt", padding=True)["input_ids"]
        batch = {**enc, "labels": labels.masked_fill(labels == tokenizer.pad_token_id, -100)}
    else:
        texts = [p + " " + a + tokenizer.eos_token for p, a in zip(prompts, answers)]
        ids = [tokenizer(t)["input_ids"] for t in texts]
        width = max(map(len, ids))
        input_ids = torch.tensor([r + [tokenizer.eos_token_id] * (width - len(r)) for r in ids])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in ids])
        batch = {"input_ids": input_ids, "attention_mask": mask, "labels": input_ids.masked_fill(mask == 0, -100)}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(**batch).loss.backward()
        opt.step()
    model.eval()


def pruned(model: torch.nn.Module, share: float = 0.3) -> torch.nn.Module:
    """Magnitude pruning of every 2-D weight except the embeddings (in place)."""
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        for p in model.parameters():
            if p.ndim == 2 and p is not emb:
                k = max(1, int(p.numel() * share))
                cut = p.abs().flatten().kthvalue(k).values
                p.masked_fill_(p.abs() <= cut, 0.0)
    return model


def int8_rounded(model: torch.nn.Module) -> torch.nn.Module:
    """Symmetric per-row int8 quantization, stored dequantized (in place)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                scale = p.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127
                p.copy_((p / scale).round().clamp(-127, 127) * scale)
    return model
