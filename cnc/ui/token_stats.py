"""Compare's token-level statistics of generative models, named as llama.cpp's
`perplexity --kl-divergence` names them (cnc.analysis.token_divergence.llama_statistics): one table,
a column per selected model, under Behaviors' status line. KL, Δp and "Same top p" are against each
model's KL reference (its root); the perplexity ratio against the chosen base. A model (or root)
precomputed before per-token log-probabilities were stored reads "Δp: re-run precompute"."""
from __future__ import annotations

import numpy as np
from dash import html

from cnc.analysis.generative_behaviors import is_generative
from cnc.analysis.token_divergence import llama_statistics
from cnc.analysis.token_probability import FIELD, NAMES, delta_p_statistics, outdated_outputs
from cnc.server.context import AppContext
from cnc.server.memo import Memo

ROWS = (("Mean KLD", ".6f"), ("Median KLD", ".6f"), ("90.0% KLD", ".6f"), ("99.0% KLD", ".6f"),
        ("99.9% KLD", ".6f"), ("Maximum KLD", ".6f"), ("Same top p", ".3%"), ("Mean PPL(Q)", ".4f"),
        ("Mean PPL(base)", ".4f"), ("Mean PPL(Q)/PPL(base)", ".6f"), *((name, ".3%") for name in NAMES))
STALE = "Δp: re-run precompute"
_STATS = Memo(16)


def statistics(ctx: AppContext, models: list[str]) -> dict[str, dict[str, float]]:
    """llama.cpp's statistics per model id (models without stored per-token data have none)."""
    def compute():
        base = ctx.outputs(models[0]) or {}
        out = {}
        for mid in models:
            o = ctx.outputs(mid) or {}
            tokens = o.get("ntokens")
            same = base.get("ntokens") is not None and tokens is not None and np.array_equal(base["ntokens"], tokens)
            out[mid] = llama_statistics(o.get("kl"), o.get("top1"), o.get("nll"),
                                        base.get("nll") if same else None, tokens)
            out[mid].update(_delta_p(ctx, mid, o))
        return out
    outs = [ctx.outputs(m) for m in models]
    refs = {o.get("kl_reference") for o in outs if o} - set(models) - {None}
    sources = tuple(outs) + tuple(ctx.outputs(r) for r in sorted(refs))  # a recomputed summary is a new object
    return _STATS.get_or((id(ctx), ctx.task_hash, tuple(models), tuple(ctx.status(m) for m in models)), compute,
                         sources)


def _delta_p(ctx: AppContext, mid: str, out: dict) -> dict[str, float]:
    """Δp against the model's KL reference; {} without one, or when either lacks the stored log-probabilities."""
    ref = out.get("kl_reference")
    ref_out = out if ref == mid else (ctx.outputs(ref) or {}) if isinstance(ref, str) else {}
    mine, theirs = out.get(FIELD), ref_out.get(FIELD)
    if mine is None or theirs is None or np.shape(mine) != np.shape(theirs):
        return {}
    return delta_p_statistics(mine, theirs)


def stale(ctx: AppContext, models: list[str]) -> list[str]:
    """Models whose Δp waits for precompute to run again: they or their KL reference were
    precomputed before per-token log-probabilities were stored."""
    found = []
    for mid in models:
        o = ctx.outputs(mid) or {}
        ref = o.get("kl_reference")
        if outdated_outputs(o) or (isinstance(ref, str) and ref != mid and outdated_outputs(ctx.outputs(ref))):
            found.append(mid)
    return found


def _cell(stats: dict[str, dict[str, float]], mid: str, name: str, fmt: str, old: list[str]) -> html.Td:
    if name in stats[mid]:
        title = f"± {stats[mid]['Mean Δp err']:.3%} (standard error)" if name == "Mean Δp" else None
        return html.Td(format(stats[mid][name], fmt), title=title)
    if name == NAMES[0] and mid in old:
        return html.Td(STALE, className="bh-stale",
                       title="This model or its root was precomputed before each reference token's probability was "
                             "stored; the next precompute (cnc --precompute-only, or the app's start) redoes it.")
    return html.Td("—")


def panel(ctx: AppContext, models: list[str]) -> html.Details | None:
    """The collapsible table, or None (not a generative task, or no statistics)."""
    if not models or not is_generative(ctx.task_data()):
        return None
    stats, old = statistics(ctx, models), stale(ctx, models)
    rows = [(name, fmt) for name, fmt in ROWS if any(name in s for s in stats.values()) or old and name in NAMES]
    if not rows:
        return None
    head = html.Tr([html.Th("llama.cpp statistic"), *(html.Th(m) for m in models)])
    body = [html.Tr([html.Th(name), *(_cell(stats, m, name, fmt, old) for m in models)]) for name, fmt in rows]
    note = ("KLD, Δp (the change in the reference token's probability, in percentage points) and Same top p per "
            "reference token, against the root of each model's tree; perplexities of the reference answers, "
            f"base = {models[0]}.")
    return html.Details([html.Summary("Token-level statistics (as llama-perplexity --kl-divergence names them)"),
                         html.Table([html.Thead(head), html.Tbody(body)], className="cs-table bh-token-stats"),
                         html.Div(note, className="hint")], className="bh-token-panel")
