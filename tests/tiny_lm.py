"""A tiny real generative task for tests: a character-level GRU language model with a LayerNorm.

Batched exactly: prompts of different lengths are packed (no padding reaches the GRU) for
generation, and teacher forcing pads on the right, which a causal model never looks at.
"""
from __future__ import annotations

import string

import torch
import yaml

CHARS = string.ascii_letters + string.digits + " ?.:,"
VOCAB = len(CHARS) + 1  # 0 is padding
STOI = {c: i + 1 for i, c in enumerate(CHARS)}

PROMPTS = ["Q: who won? A:", "Q: where is Paris? A:", "the color of sky is", "Count: 1 2 3", "abc", "Q: 2 plus 2? A:"]
REFERENCES = [["Denver Broncos"], ["France", "in France"], ["blue"], ["4 5 6"], ["def"], ["4", "four"]]


def encode(text: str) -> list[int]:
    return [STOI[c] for c in text if c in STOI]


def decode(ids: list[int]) -> str:
    return "".join(CHARS[i - 1] for i in ids if 0 < i <= len(CHARS))


class TinyLM(torch.nn.Module):
    def __init__(self, dim: int = 24):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, dim)
        self.rnn = torch.nn.GRU(dim, dim, batch_first=True)
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, VOCAB)

    def forward(self, ids: torch.Tensor, hidden: torch.Tensor | None = None):
        out, hidden = self.rnn(self.embed(ids), hidden)
        return self.head(self.norm(out)), hidden


def save_checkpoint(path, seed: int = 0, prune: float = 0.0) -> None:
    """A random model (`seed`), optionally with the smallest `prune` share of every weight zeroed."""
    torch.manual_seed(seed)
    model = TinyLM()
    with torch.no_grad():
        model.head.weight.mul_(4)  # peakier distributions, as a trained model has
        if prune:
            for p in model.parameters():
                k = max(1, int(prune * p.numel()))
                p[p.abs() <= p.abs().flatten().kthvalue(k).values] = 0
    torch.save(model.state_dict(), path)


class TinyLMTask:
    kind = "generative"
    generation = {"max_new_tokens": 8, "stop": []}

    def __init__(self, n: int = len(PROMPTS), scorer: bool = False):
        self.prompts, self.references = PROMPTS[:n], REFERENCES[:n]
        self.scorers = {"length": lambda pred, refs: float(len(pred))} if scorer else {}

    def load_model(self, checkpoint: str) -> torch.nn.Module:
        model = TinyLM()
        model.load_state_dict(torch.load(checkpoint, weights_only=True))
        return model.eval()

    def eval_data(self):
        return self.prompts, self.references

    def attributes(self):
        return {"question": ["yes" if p.startswith("Q:") else "no" for p in self.prompts]}

    def render_instance(self, index: int) -> dict:
        return {"kind": "text", "text": self.prompts[index]}

    def generate(self, model, prompts: list[str], max_new_tokens: int) -> list[str]:
        device = next(model.parameters()).device
        seqs = [torch.tensor(encode(p) or [STOI[" "]]) for p in prompts]
        lengths = torch.tensor([len(s) for s in seqs])
        padded = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True).to(device)
        packed = torch.nn.utils.rnn.pack_padded_sequence(model.embed(padded), lengths, batch_first=True,
                                                         enforce_sorted=False)
        out, hidden = model.rnn(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        last = out[torch.arange(len(seqs)), lengths.to(device) - 1]
        logits = model.head(model.norm(last))
        made = []
        for _ in range(max_new_tokens):
            nxt = logits.argmax(-1)
            made.append(nxt)
            step, hidden = model(nxt[:, None], hidden)
            logits = step[:, 0]
        return [decode(row) for row in torch.stack(made, 1).tolist()]

    def reference_logits(self, model, prompts: list[str], references: list[str]):
        device = next(model.parameters()).device
        pairs = [(encode(p) or [STOI[" "]], encode(r)) for p, r in zip(prompts, references)]
        width = max(len(p) + len(r) for p, r in pairs)
        ids = torch.zeros(len(pairs), width, dtype=torch.long)
        for i, (p, r) in enumerate(pairs):
            ids[i, :len(p) + len(r)] = torch.tensor(p + r)
        logits, _ = model(ids.to(device))
        t = max(len(r) for _, r in pairs) or 1
        out = torch.zeros(len(pairs), t, VOCAB, device=device)
        targets = torch.zeros(len(pairs), t, dtype=torch.long)
        mask = torch.zeros(len(pairs), t, dtype=torch.bool)
        for i, (p, r) in enumerate(pairs):
            out[i, :len(r)] = logits[i, len(p) - 1:len(p) + len(r) - 1]
            targets[i, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, :len(r)] = True
        return out, targets.to(device), mask.to(device)


def write_tracker_experiment(folder, stop: list[str]) -> None:
    """`folder/exp`, a Tracker directory: base, a pruned child and a pruned grandchild (checkpoints
    in `folder`), with a generation override (6 new tokens, `stop`) and an extra scorer."""
    from cnc.experiment.tracker import Tracker

    t = Tracker(folder / "exp", task="tests.tiny_lm:TinyLMTask")
    for mid, base, prune in (("base", None, 0.0), ("p30", "base", 0.3), ("p60", "p30", 0.6)):
        save_checkpoint(folder / f"{mid}.pt", seed=0, prune=prune)
        t.log_model(mid, base=base, model=str(folder / f"{mid}.pt"))
    cfg = yaml.safe_load((folder / "exp" / "config.yaml").read_text())
    cfg["task"].update(batch_size=4, activation_sample=3, generation={"max_new_tokens": 6, "stop": stop},
                       options={"scorer": True})
    (folder / "exp" / "config.yaml").write_text(yaml.safe_dump(cfg))
