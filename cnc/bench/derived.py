"""derived.*: what the derived Overview metrics (cnc.server.derived) add to the page build.

`merge` builds the experiment with derived metrics from stored values (once per precompute
progress stamp, not per request); `lookup` is what every `ctx.experiment` read costs once it is
built (a memo hit); `page_after_load` is the Overview page once the load-time warm-up has run,
without and with four derived metrics on every model: its `added_ms` is the issue's budget
(<= 10 ms at 5,000 models).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from cnc.analysis import derived_metrics as D
from cnc.bench import median_ms
from cnc.bench.overview import _after_load
from cnc.experiment.synthetic import make_experiment
from cnc.pages import overview
from cnc.server.derived import DerivedExperiment, merged


def synthetic_values(exp, seed: int = 0) -> dict[str, dict[str, float]]:
    """Plausible derived values: fidelity falls as a model's depth in its tree grows."""
    rng = np.random.default_rng(seed)
    out = {}
    for mid in exp.models:
        depth = exp.depth(mid)
        kl = float(rng.gamma(1.0 + depth, 0.05)) if depth else 0.0
        out[mid] = D.rounded({D.ACCURACY.name: float(np.clip(0.95 - 0.02 * depth + rng.normal(0, 0.01), 0, 1)),
                    D.FLIP.name: float(np.clip(kl * 0.3, 0, 1)), D.KL.name: kl,
                    D.change_metric("accuracy").name: float(-0.02 * depth)})
    return out


class _Store:
    def done_count(self) -> int:
        return 1


def scenarios(quick: bool) -> list[dict]:
    out = []
    for n in (100,) if quick else (1000, 5000):
        exp = make_experiment(n, seed=1)
        values = synthetic_values(exp)
        out.append({"scenario": "derived.merge", "models": n, "ms": median_ms(lambda: merged(exp, values, [])),
                    "note": "once per precompute progress stamp"})
        derived = DerivedExperiment()
        ctx = SimpleNamespace(task_hash="t", store=_Store(), task_data=lambda: {})
        derived._merged, derived._key = merged(exp, values, []), (id(exp), 0, "t", 1)
        derived._stamp = (1, float("inf"))  # read recently: the memo hit of a request
        out.append({"scenario": "derived.lookup", "models": n,
                    "ms": median_ms(lambda: [derived.experiment(ctx, exp, 0) for _ in range(100)]) / 100,
                    "note": "one ctx.experiment read"})
        raw = [_after_load(make_experiment(n, seed=1)) for _ in range(6)]
        with_derived = [_after_load(merged(e.experiment, synthetic_values(e.experiment), []))
                        for e in (_after_load(make_experiment(n, seed=1)) for _ in range(6))]
        plain = iter(raw)
        extra = iter(with_derived)
        base_ms = median_ms(lambda: overview.layout(next(plain), {}, []).to_plotly_json())
        derived_ms = median_ms(lambda: overview.layout(next(extra), {}, []).to_plotly_json())
        out.append({"scenario": "derived.page_after_load", "models": n, "ms": derived_ms,
                    "without_ms": base_ms, "added_ms": round(derived_ms - base_ms, 3),
                    "note": "4 derived metrics on every model"})
    return out
