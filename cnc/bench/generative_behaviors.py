"""Behaviors for generative models at scale, on synthetic stored dicts shaped as docs/generative.md
says precompute stores them ("task" and per-model "outputs"); the tests use the same data.

Each scenario times what the server does when the user opens a view (the grid component and its
first block of rows, JSON-encoded; see cnc.bench.behaviors.open_view) or an instance (the panel
with word diffs); the build record times stacking the stored dicts into a GenerativeTable.

Questions over short synthetic paragraphs; the base answers most of them exactly. Model k
(k ≥ 1, in the order given) breaks a growing share of answers the ways pruned language models do:
repeated words ("Super Bowl LII LII LII"), "a a a", a wrong word, a dropped word. Scores (exact
match and SQuAD token F1, cnc.analysis.text_scores) and repetition are computed from the texts; NLL, per-token KL
and top-1 agreement grow with k (the first model is its own KL reference: KL 0, top-1 all True).
"""
from __future__ import annotations

import json
import time

import numpy as np
import plotly.utils

from cnc.analysis import behavior_view
from cnc.analysis.text_scores import exact_match, repetition_all, token_f1
from cnc.bench import median_ms
from cnc.bench.behaviors import _BenchContext, bench_models, open_view
from cnc.ui import behaviors as ui
from cnc.ui import behaviors_data

OBJECTS = ["ship", "castle", "garden", "river", "tower", "market", "bridge", "forest"]
COLOURS = ["red", "blue", "green", "golden", "silver", "black"]
CITIES = ["Paris", "New York", "Lima", "Oslo", "Cape Town", "Kyoto"]


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
        self._outputs: dict[str, dict] = {}

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
        """The model's stored outputs (built on first use, then kept, as the app's memo would)."""
        if model_id not in self.model_ids:
            return None
        if model_id not in self._outputs:
            self._outputs[model_id] = self._make_outputs(model_id)
        return self._outputs[model_id]

    def _make_outputs(self, model_id: str) -> dict:
        k = self.model_ids.index(model_id)
        rng = np.random.default_rng((self.seed, 99, k))
        texts = self.texts[model_id]
        refs = [r[0] for r in self.references]
        ntokens = np.array([len(r.split()) + 1 for r in refs], dtype=np.int32)
        total = int(ntokens.sum())
        kl = (rng.exponential(0.05 * k * k, total) if k else np.zeros(total)).astype(np.float16)
        top1 = rng.random(total) >= 0.08 * k
        nll = (ntokens * (0.2 + 0.3 * k) * rng.uniform(0.5, 1.5, self.n)).astype(np.float32)
        return {
            "kind": "generative", "texts": texts,
            "scores": {"exact_match": np.array([exact_match(t, [r]) for t, r in zip(texts, refs)], np.float32),
                       "f1": np.array([token_f1(t, [r]) for t, r in zip(texts, refs)], np.float32)},
            "nll": nll,
            "ntokens": ntokens,
            "repetition": repetition_all(texts),
            "kl": kl, "top1": top1, "kl_reference": self.model_ids[0],
            "target_logprob": np.repeat(-nll / ntokens, ntokens).astype(np.float32),  # each token its share of the NLL
        }

    def instance(self, i: int) -> dict | None:
        return {"kind": "text", "text": self.prompts[i]} if 0 <= i < self.n else None

    def status(self, model_id: str) -> str:
        return "ready" if model_id in self.model_ids else "no data"

    def attach(self, ctx) -> None:
        """Make an AppContext serve these dicts (tests only)."""
        ctx.task_data, ctx.outputs, ctx.instance, ctx.status = self.task_data, self.outputs, self.instance, self.status


def scenarios(quick: bool) -> list[dict]:
    n, n_models = (10_000, 4) if quick else (100_000, 8)
    models = bench_models(n_models)
    data = SyntheticGenerative(models, n=n, tasks=True)
    t0 = time.perf_counter()
    for m in models:
        data.outputs(m)
    generate_ms = (time.perf_counter() - t0) * 1000
    ctx = _BenchContext(data, models)
    behaviors_data.TABLES.clear()
    t0 = time.perf_counter()
    table = ui.table_for(ctx, models)
    build_ms = (time.perf_counter() - t0) * 1000
    last = models[-1]
    cases = {
        "generative.rows_top_changes": behavior_view.ViewState(mode="exemplars", metric="sc:f1"),
        "generative.rows_instances_kl": behavior_view.ViewState(mode="instances", metric="kl"),
        "generative.sort_f1_change": behavior_view.ViewState(mode="instances", metric="sc:f1", rel=True, sort=last,
                                                             desc=False),
        "generative.sort_repetition": behavior_view.ViewState(mode="instances", metric="rep", sort=last),
        "generative.filter_right_to_wrong": behavior_view.ViewState(mode="instances", metric="r2w", filt="newerr"),
        "generative.rows_subgroups": behavior_view.ViewState(mode="subgroups", attribute="question type",
                                                             metric="r2w"),
        "generative.rows_tasks_kl": behavior_view.ViewState(mode="tasks", metric="kl", rel=True),
    }
    base = {"models": n_models, "instances": n}
    records = [{"scenario": name, **base, "ms": median_ms(lambda s=state: open_view(ctx, models, s))}
               for name, state in cases.items()]
    top = behavior_view.ViewState(mode="exemplars", metric="sc:f1")
    first = int(ui.view_for(ctx, table, top).order[0])

    def panel() -> None:
        json.dumps([c.to_plotly_json() for c in ui.detail_panel(ctx, models, first, top)],
                   cls=plotly.utils.PlotlyJSONEncoder)

    records.append({"scenario": "generative.instance_panel", **base, "ms": median_ms(panel)})
    records.append({"scenario": "generative.build_table", **base, "ms": round(build_ms, 1),
                    "generate_ms": round(generate_ms, 1), "table_mb": round(table.nbytes() / 2 ** 20, 1)})
    behaviors_data.TABLES.clear()
    behaviors_data.VIEWS.clear()
    return records
