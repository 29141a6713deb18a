"""What `cnc check` measures, read from the experiment and the precomputed store (never a model).

Per metric gate: each model's metric value (a benchmark metric on the gate's device) and, when the
store has them, the per-instance scores behind it (a generative or lm-eval score, or a classifier's
correct / incorrect). Per candidate: the flip rate against the base (changed answer or prediction)
and the mean KL divergence (classifiers: KL(base ‖ model) per instance; generative models: per
token against the tree's KL reference, which is the base when the base is the root).
"""
from __future__ import annotations

import re

import numpy as np

from cnc.analysis.ci_gates import MetricInput, Policy, PolicyError
from cnc.analysis.derived_metrics import flip_rate, token_kl_mean
from cnc.analysis.divergence import against_base
from cnc.analysis.generative_behaviors import is_generative
from cnc.experiment.benchmarks.devices import on_device
from cnc.experiment.forest import Experiment
from cnc.server.context import AppContext

_CLASSIFIER_SCORE = re.compile(r"acc|error|correct", re.IGNORECASE)
CORRECT = "correct"


def score_for(metric: str, task: dict | None, explicit: str | None) -> tuple[str | None, str | None]:
    """(per-instance score, lm-eval task restricting the instances) behind `metric`, if any."""
    if task is None:
        return None, None
    if not is_generative(task):
        if explicit not in (None, CORRECT):
            raise PolicyError(f"score {explicit!r}: a classifier's stored per-instance score is `correct`.")
        return (CORRECT, None) if explicit or _CLASSIFIER_SCORE.search(metric) else (None, None)
    names = list(task.get("score_names") or [])
    tasks = set((task.get("attributes") or {}).get("task") or [])
    if explicit is not None:
        if explicit not in names:
            raise PolicyError(f"score {explicit!r} is not stored; the stored scores are {', '.join(names)}.")
        return explicit, None
    head, _, rest = metric.partition("/")
    if rest and head in tasks:
        key = rest if rest in names else rest.split(",")[0]
        return (key, head) if key in names else (None, None)
    key = metric.strip().lower().replace(" ", "_")
    return (key, None) if key in names else (None, None)


class Inputs:
    """Reads outputs once per model and hands each gate what it needs."""

    def __init__(self, ctx: AppContext, base: str, candidates: list[str]):
        self.ctx, self.base, self.candidates = ctx, base, candidates
        self.task = ctx.task_data()
        self._outputs: dict[str, dict | None] = {}

    def outputs(self, mid: str) -> dict | None:
        if mid not in self._outputs:
            self._outputs[mid] = self.ctx.outputs(mid) if self.task is not None else None
        return self._outputs[mid]

    def _scores(self, mid: str, score: str, restrict: str | None) -> np.ndarray | None:
        out = self.outputs(mid)
        if out is None:
            return None
        if score == CORRECT:
            values = (np.asarray(out["preds"]) == np.asarray(self.task["labels"])).astype(np.float64)
        else:
            raw = (out.get("scores") or {}).get(score)
            if raw is None:
                return None
            values = np.asarray(raw, dtype=np.float64)
        if restrict is not None:
            values = values[np.asarray(self.task["attributes"]["task"]) == restrict]
        return values

    def metric(self, exp: Experiment, name: str, score: str | None, device: str | None) -> MetricInput:
        if name not in exp.metrics:
            raise PolicyError(f"metric {name!r} is not in the experiment; its metrics are {', '.join(exp.metrics)}.")
        if device is not None and device not in exp.devices:
            raise PolicyError(f"device {device!r} has no measurements; the devices are "
                              f"{', '.join(exp.devices) or 'none (no benchmarks)'}.")
        view = on_device(exp, device) if device else exp
        data = MetricInput(view.metrics[name].higher_is_better, view.models[self.base].metrics.get(name),
                           {c: view.models[c].metrics.get(name) for c in self.candidates})
        key, restrict = score_for(name, self.task, score)
        if key is not None:
            data.base_scores = self._scores(self.base, key, restrict)
            if data.base_scores is not None:
                data.scores = {c: s for c in self.candidates if (s := self._scores(c, key, restrict)) is not None}
        return data

    def flip_rates(self) -> dict[str, float | None]:
        base = self.outputs(self.base)
        if base is None:
            return {}
        field = "texts" if is_generative(self.task) else "preds"
        return {c: None if (o := self.outputs(c)) is None else flip_rate(o, base, field) for c in self.candidates}

    def mean_kls(self) -> dict[str, float | None]:
        """Candidate -> mean KL(base ‖ candidate) (None: not measurable, see `kl_notes`)."""
        base = self.outputs(self.base)
        if base is None:
            return {}
        if is_generative(self.task):
            return {c: None if (o := self.outputs(c)) is None else token_kl_mean(o, self.base) for c in self.candidates}
        have = [c for c in self.candidates if self.outputs(c) is not None]
        _, kl = against_base([self.base, *have], [base["probs"], *(self.outputs(c)["probs"] for c in have)], self.ctx)
        means = dict(zip(have, kl[1:].mean(axis=1, dtype=np.float64).tolist()))
        return {c: means.get(c) for c in self.candidates}

    def kl_note(self, exp: Experiment) -> str:
        """Why a generative candidate has no mean KL: per-token KL is stored against the tree's root only."""
        if not is_generative(self.task):
            return "no stored outputs"
        root = exp.path_to_root(self.base)[0]
        return ("no per-token KL stored (outputs-only model, or a vocabulary unlike the base's)" if root == self.base
                else f"per-token KL is measured against the tree's root {root!r}, not the base {self.base!r}: "
                     f"gate KL with `base: {root}`")


def resolve_models(exp: Experiment, policy: Policy, base: str | None) -> tuple[str, list[str]]:
    """The base (flag, else policy, else the experiment's only root) and the candidates."""
    base = base or policy.base
    if base is None:
        if len(exp.roots) != 1:
            raise PolicyError(f"the experiment has {len(exp.roots)} roots ({', '.join(exp.roots[:5])}); name the base "
                              f"with --base or `base:` in the policy.")
        base = exp.roots[0]
    if base not in exp.models:
        raise PolicyError(f"base {base!r} is not a model of the experiment.")
    candidates = policy.candidates or [m for m in exp.models if m != base]
    unknown = [c for c in candidates if c not in exp.models]
    if unknown:
        raise PolicyError(f"candidate(s) {', '.join(unknown)} are not models of the experiment.")
    return base, [c for c in candidates if c != base]
