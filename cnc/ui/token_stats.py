"""Compare's token-level statistics of generative models, named as llama.cpp's
`perplexity --kl-divergence` names them (cnc.analysis.token_divergence.llama_statistics): one table,
a column per selected model, under Behaviors' status line. KL and "Same top p" are against each
model's KL reference (its root); the perplexity ratio against the chosen base."""
from __future__ import annotations

import numpy as np
from dash import html

from cnc.analysis.generative_behaviors import is_generative
from cnc.analysis.token_divergence import llama_statistics
from cnc.server.context import AppContext
from cnc.server.memo import Memo

ROWS = (("Mean KLD", ".6f"), ("Median KLD", ".6f"), ("90.0% KLD", ".6f"), ("99.0% KLD", ".6f"),
        ("99.9% KLD", ".6f"), ("Maximum KLD", ".6f"), ("Same top p", ".3%"), ("Mean PPL(Q)", ".4f"),
        ("Mean PPL(base)", ".4f"), ("Mean PPL(Q)/PPL(base)", ".6f"))
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
        return out
    return _STATS.get_or((id(ctx), ctx.task_hash, tuple(models), tuple(ctx.status(m) for m in models)), compute)


def panel(ctx: AppContext, models: list[str]) -> html.Details | None:
    """The collapsible table, or None (not a generative task, or no statistics)."""
    if not models or not is_generative(ctx.task_data()):
        return None
    stats = statistics(ctx, models)
    rows = [(name, fmt) for name, fmt in ROWS if any(name in s for s in stats.values())]
    if not rows:
        return None
    head = html.Tr([html.Th("llama.cpp statistic"), *(html.Th(m) for m in models)])
    body = [html.Tr([html.Th(name), *(html.Td(format(stats[m][name], fmt) if name in stats[m] else "—")
                                      for m in models)]) for name, fmt in rows]
    note = ("KLD and Same top p per reference token, against the root of each model's tree; perplexities of "
            f"the reference answers, base = {models[0]}. Δp is not shown: it needs each token's reference "
            "probability under both models, which precompute does not store.")
    return html.Details([html.Summary("Token-level statistics (as llama-perplexity --kl-divergence names them)"),
                         html.Table([html.Thead(head), html.Tbody(body)], className="cs-table bh-token-stats"),
                         html.Div(note, className="hint")], className="bh-token-panel")
