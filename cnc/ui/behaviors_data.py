"""The Behaviors tab's data: per-(selection, base) instance tables and per-state views, memoized
(bounded) so paging, sorting and filtering a selection stay cheap."""
from __future__ import annotations

from cnc.analysis import behavior_metrics, behavior_table, behavior_view
from cnc.analysis import generative_behaviors as G
from cnc.server.context import AppContext
from cnc.server.memo import Memo

TABLES = Memo(4)  # per (context, task, selection, base, readiness): InstanceTable | GenerativeTable | None
VIEWS = Memo(8)  # per (table, view state): filtered + sorted View


def table_for(ctx: AppContext, models: list[str]) -> behavior_table.InstanceTable | G.GenerativeTable | None:
    """Per-instance arrays for a selection (base first), of the task's kind; None without task
    data or base outputs."""
    task = ctx.task_data()
    if task is None or not models:
        return None
    statuses = tuple(ctx.status(m) for m in models)
    key = (id(ctx), ctx.task_hash, tuple(models), statuses)
    if G.is_generative(task):
        return TABLES.get_or(key, lambda: G.build_generative_table(task, models, ctx.outputs, ctx.status))
    pairs = ctx if callable(getattr(ctx, "get_divergence", None)) else None  # stored MSE / KL per pair
    return TABLES.get_or(key, lambda: behavior_table.build_table(task["labels"], models, ctx.outputs, ctx.status,
                                                                 pairs))


def specs_of(table: behavior_table.InstanceTable | G.GenerativeTable) -> dict[str, behavior_metrics.MetricSpec]:
    """The metrics a table has (classifiers: built-ins plus per-instance scalars)."""
    return table.specs() if isinstance(table, G.GenerativeTable) else behavior_metrics.metric_specs(table.scalars)


def view_for(ctx: AppContext, table: behavior_table.InstanceTable | G.GenerativeTable,
             state: behavior_view.ViewState) -> behavior_view.View:
    task = ctx.task_data() or {}

    def make():
        return table, behavior_view.build_view(table, state, specs_of(table), task.get("class_names", []),
                                               task.get("attributes", {}))

    owner, view = VIEWS.get_or((id(table), state.key()), make)
    return view if owner is table else make()[1]  # an id reused after eviction: never serve a stale view
