"""The Behaviors tab's data: per-(selection, base) instance tables and per-state views, memoized
(bounded) so paging, sorting and filtering a selection stay cheap."""
from __future__ import annotations

from cnc.analysis import behaviors as B
from cnc.server.context import AppContext
from cnc.server.memo import Memo

_TABLES = Memo(4)  # per (context, task, selection, base, readiness): InstanceTable | None
_VIEWS = Memo(8)  # per (table, view state): filtered + sorted View


def table_for(ctx: AppContext, models: list[str]) -> B.InstanceTable | None:
    """Per-instance arrays for a selection (base first); None without task data or base outputs."""
    task = ctx.task_data()
    if task is None or not models:
        return None
    statuses = tuple(ctx.status(m) for m in models)
    key = (id(ctx), ctx.task_hash, tuple(models), statuses)
    return _TABLES.get_or(key, lambda: B.build_table(task["labels"], models, ctx.outputs, ctx.status))


def view_for(ctx: AppContext, table: B.InstanceTable, state: B.ViewState) -> B.View:
    task = ctx.task_data() or {}

    def make():
        return table, B.build_view(table, state, B.metric_specs(table.scalars), task.get("class_names", []),
                                   task.get("attributes", {}))

    owner, view = _VIEWS.get_or((id(table), state.key()), make)
    return view if owner is table else make()[1]  # an id reused after eviction: never serve a stale view
