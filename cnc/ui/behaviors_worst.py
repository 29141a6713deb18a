"""Behaviors' "Worst samples of" and "Ranked by" controls: which compared model's damage ranks the
instance rows and in what (cnc.analysis.worst_samples; URL keys bworst, bworstby), worded for the
task's kind."""
from __future__ import annotations

from cnc.analysis import behavior_view
from cnc.analysis import generative_behaviors as G
from cnc.analysis.derived_metrics import SCORE_NAMES
from cnc.analysis.worst_samples import WORST_BY
from cnc.server.context import AppContext
from cnc.ui.behaviors_data import table_for

WORST_TITLE = ("Rank the instance rows by what compression did to one compared model against the base: right → "
               "wrong, score drop or KL divergence (a click on a column header sorts by that column instead)")


def worst_available(state: behavior_view.ViewState, models: list[str]) -> bool:
    """"Worst samples of" applies to instance rows with a compared model to choose."""
    return state.mode in behavior_view.INSTANCE_MODES and len(models) > 1


def worst_shown(state: behavior_view.ViewState) -> bool:
    return state.worst is not None and state.mode in behavior_view.INSTANCE_MODES


def worst_options(ctx: AppContext, models: list[str]) -> list[dict]:
    """The compared models (not the base) whose worst samples can come first."""
    return [{"label": ctx.experiment.models[m].label, "value": m} for m in models[1:] if m in ctx.experiment.models]


def worst_by_options(ctx: AppContext, models: list[str]) -> list[dict]:
    """What damage ranks first, worded for the task: the score is the true class's probability for
    classifiers, the primary score (F1) for generative tasks; KL against the base or the KL reference."""
    table = table_for(ctx, models) if models else None
    if isinstance(table, G.GenerativeTable):
        score = SCORE_NAMES.get(table.primary, table.primary) if table.primary else "score"
        labels = {"r2w": "Right → wrong first (exact match)", "drop": f"Largest {score} drop first",
                  "kl": "Largest KL divergence first (per token, vs its root)"}
    else:
        labels = {"r2w": "Right → wrong first", "drop": "Largest drop in true-class probability first",
                  "kl": "Largest KL divergence from the base first"}
    return [{"label": labels[k], "value": k} for k in WORST_BY]
