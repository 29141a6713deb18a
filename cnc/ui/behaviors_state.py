"""The Behaviors tab's view state: parsed and validated from the URL and from the browser's state
store, and written back as the tab's URL keys (brows battr bmetric brel bfilt bmin bcmp bflips brank
bworst bworstby bsort bdir bgroup bi). What is valid depends on the task's kind: classifiers have class rows and the
"error" metric by default; generative tasks have no class rows and open on the top changes in
outputs (exemplar rows) with the F1 score (cnc.analysis.generative_behaviors)."""
from __future__ import annotations

from typing import Any

import numpy as np

from cnc.analysis import behavior_groups, behavior_metrics, behavior_view
from cnc.analysis import generative_behaviors as G
from cnc.analysis.parsing import parse_float, parse_index
from cnc.analysis.worst_samples import WORST_BY
from cnc.server.context import AppContext, instance_count
from cnc.server.urlstate import pick
from cnc.ui.behaviors_data import specs_of, table_for
from cnc.ui.inputs import mapping, number, one_of, text

MAX_FLIPS = 1000


def state_from_query(ctx: AppContext, query: dict, notices: list[str], models: list[str]) -> tuple[behavior_view.ViewState, int | None]:
    """Validated view state and open instance from the URL; bad values get a notice."""
    task = ctx.task_data() or {}
    attrs = list(task.get("attributes", {}))
    specs = specs_for(ctx, models)
    mode0, metric0 = defaults(ctx, models)
    s = behavior_view.ViewState()

    def take(key: str, allowed, default):
        return pick(query.get(key), allowed, default, notices, key)

    if query.get("brows") == "subgroups" and not attrs:
        notices.append("This task declares no instance attributes, so subgroup rows are not available.")
        s.mode = mode0
    else:
        s.mode = take("brows", row_modes(task), mode0)
    s.attribute = take("battr", attrs, attrs[0] if attrs else None)
    s.metric = take("bmetric", specs, metric0)
    s.rel = take("brel", ("0", "1"), "0") == "1"
    s.filt = take("bfilt", behavior_view.FILTERS, "all")
    if query.get("bmin") is not None:
        s.threshold = parse_float(query["bmin"])
        if s.threshold is None:
            notices.append("Ignored the row threshold in the link: not a number.")
    s.direction = take("bcmp", behavior_view.THRESHOLD_DIRECTIONS, "ge")
    s.min_flips = _int(query.get("bflips"), 1, 1, MAX_FLIPS, notices, "bflips")
    s.rank = take("brank", behavior_view.RANKS, behavior_view.RANKS[0])
    s.worst = take("bworst", worst_models(s.mode, models), None)
    s.worst_by = take("bworstby", WORST_BY, WORST_BY[0])
    s.sort = take("bsort", sort_keys(s.mode, models), None)
    s.desc = take("bdir", ("asc", "desc"), "desc") == "desc"
    s.group = _group_from_query(query.get("bgroup"), s.mode, task, notices)
    inst = _int(query.get("bi"), None, 0, instance_count(task) - 1, notices, "bi")
    return s, inst


def _group_from_query(text: str | None, mode: str, task: dict, notices: list[str]) -> str | None:
    """The canonical key of a valid group restriction from the link, else None (with a notice)."""
    if text is None:
        return None
    if mode not in behavior_view.INSTANCE_MODES:
        notices.append("Ignored the class/subgroup restriction in the link: it applies to instance rows only.")
        return None
    labels = task.get("labels", [])
    group = behavior_groups.parse_group(text, task.get("class_names", []), task.get("attributes", {}),
                          n_classes=int(np.max(labels)) + 1 if len(labels) else 0)
    if group is None:
        notices.append(f"Ignored bgroup={text[:60]!r} from the link: no such class or subgroup.")
        return None
    return group.key


def _int(value: str | None, default, lo: int, hi: int, notices: list[str], key: str):
    if value is None:
        return default
    n = parse_index(value)
    if n is None or not lo <= n <= hi:
        notices.append(f"Ignored {key}={value[:20]!r} from the link: out of range.")
        return default
    return n


def sort_keys(mode: str, models: list[str]) -> list[str]:
    """What rows can be sorted by in a row mode: a model's value, the row order, flips or size."""
    return [*models, "row", "flips" if mode in behavior_view.INSTANCE_MODES else "n"]


def worst_models(mode: str, models: list[str]) -> list[str]:
    """Whose worst samples instance rows can rank first: any compared model (not the base)."""
    return models[1:] if mode in behavior_view.INSTANCE_MODES else []


def url_params(state: behavior_view.ViewState, inst: int | None,
               default: tuple[str, str] = ("classes", "error")) -> dict:
    """The URL share of this tab (defaults omitted; `default`: the task's (row mode, metric))."""
    return {
        "brows": state.mode if state.mode != default[0] else None,
        "battr": state.attribute if state.mode == "subgroups" else None,
        "bmetric": state.metric if state.metric != default[1] else None,
        "brel": "1" if state.rel else None,
        "bfilt": state.filt if state.filt != "all" else None,
        "bmin": state.threshold,
        "bcmp": state.direction if state.direction != "ge" else None,
        "bflips": state.min_flips if state.min_flips != 1 else None,
        "brank": state.rank if state.rank != behavior_view.RANKS[0] else None,
        "bworst": state.worst if state.mode in behavior_view.INSTANCE_MODES else None,
        "bworstby": state.worst_by if state.worst and state.worst_by != WORST_BY[0] else None,
        "bsort": state.sort,
        "bdir": "asc" if state.sort and not state.desc else None,
        "bgroup": state.group if state.mode in behavior_view.INSTANCE_MODES else None,
        "bi": inst,
    }


def state_to_dict(state: behavior_view.ViewState, inst: int | None) -> dict:
    return {**vars(state), "inst": inst}


def state_from_dict(data: Any) -> tuple[behavior_view.ViewState, int | None]:
    """The state store (browser JSON, so checked field by field: a wrong type is the default).
    Values that depend on the data (metric, attribute, sort, group) are checked by `checked`."""
    d, s = mapping(data), behavior_view.ViewState()
    s.mode = one_of(d.get("mode"), behavior_view.ROW_MODES, s.mode)
    s.attribute, s.sort, s.group = text(d.get("attribute")), text(d.get("sort")), text(d.get("group"))
    s.metric = text(d.get("metric"), s.metric)
    s.rel, s.desc = d.get("rel") is True, d.get("desc") is not False
    s.filt = one_of(d.get("filt"), behavior_view.FILTERS, s.filt)
    s.threshold = number(d.get("threshold"))
    s.direction = one_of(d.get("direction"), behavior_view.THRESHOLD_DIRECTIONS, s.direction)
    s.min_flips = flips_value(d.get("min_flips"))
    s.rank = one_of(d.get("rank"), behavior_view.RANKS, s.rank)
    s.worst = text(d.get("worst"))
    s.worst_by = one_of(d.get("worst_by"), WORST_BY, s.worst_by)
    inst = d.get("inst")
    return s, inst if isinstance(inst, int) and not isinstance(inst, bool) and inst >= 0 else None


def flips_value(value: Any) -> int:
    n = number(value)
    return int(min(n, MAX_FLIPS)) if n is not None and n >= 1 else 1


def checked(ctx: AppContext, models: list[str], state: behavior_view.ViewState) -> behavior_view.ViewState:
    """`state` with values this task and selection do not have reset to their defaults."""
    task = ctx.task_data() or {}
    attrs = list(task.get("attributes", {}))
    mode0, metric0 = defaults(ctx, models)
    state.attribute = one_of(state.attribute, attrs, attrs[0] if attrs else None)
    state.mode = one_of(state.mode, row_modes(task), mode0)
    if state.metric not in specs_for(ctx, models):
        state.metric = metric0
    if state.sort not in sort_keys(state.mode, models):
        state.sort = None
    if state.worst not in worst_models(state.mode, models):
        state.worst = None
    if state.group is not None and (state.mode not in behavior_view.INSTANCE_MODES or _group_from_query(
            state.group, state.mode, task, []) is None):
        state.group = None
    return state


def scalar_names(ctx: AppContext, models: list[str]) -> list[str]:
    out = ctx.outputs(models[0]) if models else None
    return sorted((out or {}).get("scalars") or {})


def row_modes(task: dict) -> list[str]:
    """The row modes a task has: no class rows for generative tasks, subgroups only with
    attributes, task rows only with a "task" attribute (lm-eval)."""
    attrs = task.get("attributes") or {}
    gone = {"classes"} if G.is_generative(task) else set()
    if not attrs:
        gone.add("subgroups")
    if behavior_metrics.TASK_ATTRIBUTE not in attrs:
        gone.add("tasks")
    return [m for m in behavior_view.ROW_MODES if m not in gone]


def specs_for(ctx: AppContext, models: list[str]) -> dict[str, behavior_metrics.MetricSpec]:
    """The metrics of a selection: per-instance scalars for classifiers; scores, KL (labelled with
    the selection's KL reference) and the rest for generative tasks."""
    task = ctx.task_data() or {}
    if not G.is_generative(task):
        return behavior_metrics.metric_specs(scalar_names(ctx, models))
    table = table_for(ctx, models) if models else None
    return specs_of(table) if table is not None else G.generative_specs(list(task.get("score_names") or []))


def defaults(ctx: AppContext, models: list[str]) -> tuple[str, str]:
    """(row mode, metric) shown without URL keys: classes and error rate for classifiers; the top
    changes in outputs and the primary score (F1) for generative tasks."""
    task = ctx.task_data() or {}
    if not G.is_generative(task):
        return "classes", "error"
    table = table_for(ctx, models) if models else None
    if isinstance(table, G.GenerativeTable):
        return "exemplars", table.default_metric()
    names = list(task.get("score_names") or [])
    return "exemplars", "sc:f1" if "f1" in names else f"sc:{names[0]}" if names else "flip"
