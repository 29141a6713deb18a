"""Synthetic stored dicts of a generative task, shaped as docs/generative.md says precompute
stores them ("task" and per-model "outputs"), for Behaviors tests that must not wait for a model.

Questions over short synthetic paragraphs; the base answers most of them exactly. Model k
(k ≥ 1, in the order given) breaks a growing share of answers the ways pruned language models do:
repeated words ("Super Bowl LII LII LII"), "a a a", a wrong word, a dropped word. Scores (exact
match and a SQuAD-style token F1) and repetition are computed from the texts; NLL, per-token KL
and top-1 agreement grow with k (the first model is its own KL reference: KL 0, top-1 all True).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

OBJECTS = ["ship", "castle", "garden", "river", "tower", "market", "bridge", "forest"]
COLOURS = ["red", "blue", "green", "golden", "silver", "black"]
CITIES = ["Paris", "New York", "Lima", "Oslo", "Cape Town", "Kyoto"]


def f1(prediction: str, reference: str) -> float:
    p, r = prediction.lower().split(), reference.lower().split()
    common = sum((Counter(p) & Counter(r)).values())
    if not p or not r or not common:
        return float(p == r)
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def repetition(text: str, n: int = 2) -> float:
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)


class SyntheticGenerative:
    """Task and outputs for `model_ids` (the first is the base and KL reference)."""

    def __init__(self, model_ids: list[str], n: int = 200, seed: int = 0, tasks: bool = False):
        self.model_ids, self.n, self.seed = list(model_ids), n, seed
        rng = np.random.default_rng(seed)
        self.prompts, self.references, qtype = [], [], []
        for i in range(n):
            obj = OBJECTS[i % len(OBJECTS)]
            if rng.random() < 0.5:
                answer = str(rng.choice(COLOURS))
                self.prompts.append(f"The {obj} is {answer} and old. Question: what colour is the {obj}? Answer:")
                qtype.append("colour")
            else:
                answer = str(rng.choice(CITIES))
                self.prompts.append(f"The {obj} stands in {answer}. Question: where is the {obj}? Answer:")
                qtype.append("place")
            self.references.append([answer])
        self.attributes = {"question type": qtype,
                           "answer length": ["1 word" if len(r[0].split()) == 1 else "2+ words"
                                             for r in self.references]}
        if tasks:
            self.attributes["task"] = ["colours" if q == "colour" else "places" for q in qtype]
        self.texts = {mid: self._answers(k) for k, mid in enumerate(self.model_ids)}

    def _answers(self, k: int) -> list[str]:
        rng = np.random.default_rng((self.seed, k))
        out = []
        for i, (ref,) in enumerate(self.references):
            answer = ref if i % 17 else str(COLOURS[(i // 17) % len(COLOURS)])  # the base misses a few
            if k and rng.random() < 0.15 * k:
                how = rng.integers(0, 4)
                words = answer.split()
                answer = (f"{answer} {words[-1]} {words[-1]}" if how == 0 else "a a a" if how == 1
                          else str(rng.choice(COLOURS + CITIES)) if how == 2 else words[0] + " the")
            out.append(answer)
        return out

    def task_data(self) -> dict:
        return {"kind": "generative", "prompts": self.prompts, "references": self.references,
                "attributes": self.attributes, "score_names": ["exact_match", "f1"]}

    def outputs(self, model_id: str) -> dict | None:
        if model_id not in self.model_ids:
            return None
        k = self.model_ids.index(model_id)
        rng = np.random.default_rng((self.seed, 99, k))
        texts = self.texts[model_id]
        refs = [r[0] for r in self.references]
        ntokens = np.array([len(r.split()) + 1 for r in refs], dtype=np.int32)
        total = int(ntokens.sum())
        kl = (rng.exponential(0.05 * k * k, total) if k else np.zeros(total)).astype(np.float16)
        top1 = rng.random(total) >= 0.08 * k
        return {
            "kind": "generative", "texts": texts,
            "scores": {"exact_match": np.array([float(t == r) for t, r in zip(texts, refs)], np.float32),
                       "f1": np.array([f1(t, r) for t, r in zip(texts, refs)], np.float32)},
            "nll": (ntokens * (0.2 + 0.3 * k) * rng.uniform(0.5, 1.5, self.n)).astype(np.float32),
            "ntokens": ntokens,
            "repetition": np.array([repetition(t) for t in texts], np.float32),
            "kl": kl, "top1": top1, "kl_reference": self.model_ids[0],
        }

    def instance(self, i: int) -> dict | None:
        return {"kind": "text", "text": self.prompts[i]} if 0 <= i < self.n else None

    def status(self, model_id: str) -> str:
        return "ready" if model_id in self.model_ids else "no data"

    def attach(self, ctx) -> None:
        """Make an AppContext serve these dicts (tests only)."""
        ctx.task_data, ctx.outputs, ctx.instance, ctx.status = self.task_data, self.outputs, self.instance, self.status
