"""Release gates for compressed variants (`cnc check`): a policy, and each candidate's verdict.

A policy file (YAML or JSON) says per metric how much worse than the base a candidate may be —
`min_recovery` (candidate / base, or base / candidate for lower-is-better metrics) or `max_drop`
(the change in the metric's units, in its worse direction) — and bounds the flip rate (share of
instances whose answer changed) and the mean KL divergence from the base. A breached metric gate
fails only when the change is statistically significant (paired tests on the per-instance scores:
exact McNemar for 0/1 scores, bootstrap otherwise; Holm-adjusted over every test of the run) unless
the gate or policy says `significance: false`; a metric without per-instance scores (latency,
benchmark throughput) fails on the threshold alone. Fixed small samples therefore do not flake:
a 2-point drop on 50 questions is noise, on 5,000 it is not. docs/check.md documents the schema.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnc.analysis import paired_stats

GATE_KEYS = {"min_recovery", "max_drop"}
METRIC_KEYS = GATE_KEYS | {"score", "significance", "device"}
POLICY_KEYS = {"base", "candidates", "alpha", "significance", "metrics", "max_flip_rate", "max_mean_kl"}


class PolicyError(ValueError):
    """A policy file the check cannot use (exit code 2)."""


@dataclass
class Gate:
    kind: str  # min_recovery, max_drop, max_flip_rate, max_mean_kl
    threshold: float
    metric: str | None = None  # None for flip rate and KL
    score: str | None = None  # the per-instance score behind the metric (default: guessed)
    significance: bool = True  # a breach fails only when significant
    device: str | None = None  # benchmark metrics: the device whose measurement counts

    @property
    def label(self) -> str:
        what = self.metric if self.metric else {"max_flip_rate": "flip rate", "max_mean_kl": "mean KL"}[self.kind]
        return f"{what}{f' @ {self.device}' if self.device else ''}: {self.kind} {self.threshold:g}"


@dataclass
class Policy:
    gates: list[Gate]
    alpha: float = paired_stats.ALPHA
    base: str | None = None
    candidates: list[str] | None = None


def _number(value: Any, where: str, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise PolicyError(f"{where} is {value!r}. Fix: give a number between {low:g} and {high:g}.")
    return float(value)


def parse_policy(data: Any, source: str) -> Policy:
    """The policy's mapping -> Policy; every fault names the file, the key and the fix."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy is a mapping with `metrics`, `max_flip_rate`, `max_mean_kl` "
                          f"(see docs/check.md); got {type(data).__name__}.")
    unknown = set(data) - POLICY_KEYS
    if unknown:
        raise PolicyError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}. "
                          f"Fix: use {', '.join(sorted(POLICY_KEYS))}.")
    alpha = _number(data.get("alpha", paired_stats.ALPHA), f"{source}: `alpha`", 1e-9, 0.5)
    default_sig = data.get("significance", True)
    if not isinstance(default_sig, bool):
        raise PolicyError(f"{source}: `significance` is {default_sig!r}. Fix: true or false.")
    gates: list[Gate] = []
    metrics = data.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise PolicyError(f"{source}: `metrics` must map metric names to gates, e.g. "
                          f"{{Accuracy: {{min_recovery: 0.95}}}}; got {metrics!r}.")
    for name, spec in metrics.items():
        where = f"{source}: metrics.{name}"
        if not isinstance(spec, dict) or set(spec) - METRIC_KEYS or not set(spec) & GATE_KEYS:
            raise PolicyError(f"{where} is {spec!r}. Fix: give min_recovery (e.g. 0.95) and/or max_drop (e.g. 0.02); "
                              f"optional: score, significance, device.")
        sig = spec.get("significance", default_sig)
        if not isinstance(sig, bool):
            raise PolicyError(f"{where}.significance is {sig!r}. Fix: true or false.")
        for kind in sorted(GATE_KEYS & set(spec)):
            gates.append(Gate(kind, _number(spec[kind], f"{where}.{kind}"), str(name),
                              score=None if spec.get("score") is None else str(spec["score"]), significance=sig,
                              device=None if spec.get("device") is None else str(spec["device"])))
    if data.get("max_flip_rate") is not None:
        gates.append(Gate("max_flip_rate", _number(data["max_flip_rate"], f"{source}: `max_flip_rate`", 0, 1)))
    if data.get("max_mean_kl") is not None:
        gates.append(Gate("max_mean_kl", _number(data["max_mean_kl"], f"{source}: `max_mean_kl`")))
    if not gates:
        raise PolicyError(f"{source}: no gate. Fix: add `metrics: {{<metric>: {{min_recovery: 0.95}}}}`, "
                          f"`max_flip_rate` or `max_mean_kl`.")
    candidates = data.get("candidates")
    if candidates is not None and (not isinstance(candidates, list) or not candidates):
        raise PolicyError(f"{source}: `candidates` is {candidates!r}. Fix: a list of model ids, or leave it out "
                          f"(every model but the base).")
    base = data.get("base")
    return Policy(gates, alpha, None if base is None else str(base),
                  None if candidates is None else [str(c) for c in candidates])


@dataclass
class MetricInput:
    """What one metric gate needs: aggregate values, direction, per-instance scores when stored."""

    higher_is_better: bool
    base_value: float | None
    values: dict[str, float | None]  # candidate -> its value
    base_scores: np.ndarray | None = None  # float64 [N] per-instance scores of the base (NaN = missing)
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # candidate -> [N]


@dataclass
class GateResult:
    candidate: str
    gate: Gate
    value: float | None  # the candidate's metric / flip rate / mean KL
    base_value: float | None
    observed: float | None  # recovery or drop (metric gates); value otherwise
    breached: bool
    test: str = ""  # mcnemar, bootstrap or "" (no per-instance scores)
    n: int = 0  # paired instances tested
    p_value: float = math.nan
    p_adjusted: float = math.nan
    failed: bool = False
    reason: str = ""


def recovery(base: float, value: float, higher_is_better: bool) -> float:
    """How much of the base's quality the candidate keeps (1 = as good; > 1 better)."""
    num, den = (value, base) if higher_is_better else (base, value)
    return num / den if den else (math.inf if num > 0 else 1.0)


def drop(base: float, value: float, higher_is_better: bool) -> float:
    """How much worse than the base, in the metric's units (negative: better)."""
    return base - value if higher_is_better else value - base


def _paired_p(base: np.ndarray, stacked: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """Per candidate row: the test used, its p-values and the pairs tested."""
    finite = np.isfinite(stacked) & np.isfinite(base)
    n = finite.sum(axis=1)
    values = np.concatenate([base[np.isfinite(base)], stacked[finite]])
    if np.isin(values, (0.0, 1.0)).all():
        return "mcnemar", np.atleast_1d(paired_stats.mcnemar_exact(base, stacked).p_value), n
    return "bootstrap", np.atleast_1d(paired_stats.paired_bootstrap(base, stacked).p_value), n


def _unusable(value: float | None, whose: str, missing: str = "no value") -> str | None:
    """Why a value cannot pass a gate (missing, or NaN / inf, which no comparison may wave through)."""
    if value is None:
        return whose + missing
    return None if math.isfinite(value) else f"{whose}not a finite number ({value}): its outputs hold NaN or inf"


def _metric_results(gate: Gate, data: MetricInput, candidates: list[str]) -> list[GateResult]:
    tested = [c for c in candidates if c in data.scores] if data.base_scores is not None else []
    p, test, n = {}, "", {}
    if tested:
        test, pv, nn = _paired_p(data.base_scores, np.stack([data.scores[c] for c in tested]))
        p = dict(zip(tested, pv.tolist()))
        n = dict(zip(tested, nn.tolist()))
    out = []
    for c in candidates:
        value, base = data.values.get(c), data.base_value
        if (why := _unusable(value, "") or _unusable(base, "the base: ")) is not None:
            out.append(GateResult(c, gate, value, base, None, True, failed=True, reason=why))
            continue
        if gate.kind == "min_recovery":
            observed = recovery(base, value, data.higher_is_better)
            breached = observed < gate.threshold
        else:
            observed = drop(base, value, data.higher_is_better)
            breached = observed > gate.threshold
        out.append(GateResult(c, gate, value, base, observed, breached, test if c in p else "", int(n.get(c, 0)),
                              float(p.get(c, math.nan))))
    return out


def evaluate(policy: Policy, candidates: list[str], metrics: dict[tuple[str, str | None, str | None], MetricInput],
             flip_rates: dict[str, float | None], mean_kls: dict[str, float | None],
             why_missing: dict[str, str] | None = None) -> list[GateResult]:
    """Every (candidate, gate) result, with Holm-adjusted p-values and the verdict.

    `metrics` is keyed by (metric, score, device) of each metric gate; flip rates and mean KLs by
    candidate (None: not available for it, `why_missing[gate kind]` says why). A missing or
    non-finite value always fails its gate."""
    results: list[GateResult] = []
    for gate in policy.gates:
        if gate.metric is not None:
            results.extend(_metric_results(gate, metrics[(gate.metric, gate.score, gate.device)], candidates))
            continue
        source = flip_rates if gate.kind == "max_flip_rate" else mean_kls
        missing = "not available" + (f": {why_missing[gate.kind]}" if gate.kind in (why_missing or {}) else "")
        for c in candidates:
            value = source.get(c)
            why = _unusable(value, "", missing)
            res = GateResult(c, gate, value, None, value, why is not None or value > gate.threshold)
            res.failed, res.reason = res.breached, why or ("above the limit" if res.breached else "")
            results.append(res)
    tested = [r for r in results if r.test]
    for r, adjusted in zip(tested, paired_stats.holm([r.p_value for r in tested]).tolist() if tested else []):
        r.p_adjusted = adjusted
    for r in results:
        if r.gate.metric is None or r.reason:
            continue
        significant = bool(paired_stats.significant(r.p_adjusted, policy.alpha)) if r.test else None
        if not r.breached:
            r.reason = "within the limit"
        elif significant is None:
            r.failed, r.reason = True, "beyond the limit (no per-instance scores to test)"
        elif not r.gate.significance:
            r.failed, r.reason = True, "beyond the limit (significance not required)"
        elif significant:
            r.failed, r.reason = True, f"beyond the limit, significant (p={r.p_adjusted:.3g} ≤ {policy.alpha:g})"
        else:
            r.reason = f"beyond the limit but not significant (p={r.p_adjusted:.3g} > {policy.alpha:g})"
    return results
