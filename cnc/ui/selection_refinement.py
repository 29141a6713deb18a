"""Refine Comparison's state (Selection Details): what the user kept, by name, and how it reads
from the URL (`svars`, `sval`, `sxmod`, `sflat`), from the stored state and from the controls.

Why by name: a link names variables and values as the panel shows them
(`svars=amount,fine-tune&sval=operation:taylor prune 0.3`), so it keeps its meaning when models are
logged or the explanation changes; names the explanation no longer has fall back with a notice
(docs/comparability.md, "Refinement links").
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from cnc.analysis.comparability import Explanation
from cnc.server.urlstate import split_list
from cnc.ui.inputs import items, mapping, text
from cnc.ui.selection_chart import value_text

NO_VARS = "none"  # `svars=none`: the user unticked every variable


@dataclass(frozen=True)
class Refinement:
    """What the user kept in Refine Comparison, by name so a link keeps its meaning when models are
    logged or the explanation changes. `variables=None` means automatic (the first two); dropped
    values are (variable label, value text) pairs, as the panel shows them."""

    variables: tuple[str, ...] | None = None
    dropped_values: tuple[tuple[str, str], ...] = ()
    dropped_models: tuple[str, ...] = ()
    flatten: bool = False

    def params(self) -> dict:
        vars_ = None
        if self.variables is not None:
            vars_ = [_escape(v) for v in self.variables] if self.variables else NO_VARS
        return {
            "svars": vars_,
            "sval": [f"{_escape(k)}:{_escape(v)}" for k, v in self.dropped_values] or None,
            "sxmod": list(self.dropped_models) or None,
            "sflat": 1 if self.flatten else None,
        }

    def to_data(self, selection: list[str]) -> dict:
        return {"selection": list(selection),
                "vars": None if self.variables is None else list(self.variables),
                "xval": [list(p) for p in self.dropped_values],
                "xmod": list(self.dropped_models), "flat": self.flatten}


def _escape(text: str) -> str:
    """A name inside a comma-separated URL list of `label:value` items."""
    return text.replace("%", "%25").replace(",", "%2C").replace(":", "%3A")


def refinement_from_data(data: dict | None, selection: list[str]) -> Refinement:
    """The stored refinement if it was made for this selection, else the automatic one (the
    store comes back from the browser: anything malformed is dropped)."""
    data = mapping(data)
    if not data or items(data.get("selection")) != list(selection):
        return Refinement()
    vars_ = data.get("vars")
    pairs = [p for p in items(data.get("xval")) if isinstance(p, list) and len(p) == 2 and all(map(text, p))]
    return Refinement(
        variables=None if vars_ is None else tuple(k for k in items(vars_) if text(k)),
        dropped_values=tuple((k, v) for k, v in pairs),
        dropped_models=tuple(m for m in items(data.get("xmod")) if m in selection),
        flatten=data.get("flat") is True,
    )


def variable_index(explanation: Explanation) -> dict[str, int]:
    return {v.label: k for k, v in enumerate(explanation.variables)}


def value_index(explanation: Explanation, k: int) -> dict[str, int]:
    var = explanation.variables[k]
    return {value_text(var, v): j for j, v in enumerate(var.values)}


def refinement_from_query(query: dict[str, str], explanation: Explanation, notices: list[str]) -> Refinement:
    """Validated refinement: variables and values this selection's explanation does not have, and
    models outside the selection, are dropped with a notice (the link is older than the data)."""
    index = variable_index(explanation)
    bad: list[str] = []
    vars_: tuple[str, ...] | None = None
    raw = query.get("svars")
    if raw is not None:
        if raw == NO_VARS:
            vars_ = ()
        else:
            picked = []
            for item in map(unquote, split_list(raw)):
                if item not in index or item in picked:
                    bad.append(item)
                else:
                    picked.append(item)
            vars_ = tuple(picked) if picked or not bad else None
    dropped = []
    for item in split_list(query.get("sval")):
        label, _, value = (unquote(x) for x in item.partition(":"))
        k = index.get(label)
        if k is None or value not in value_index(explanation, k):
            bad.append(f"{label}: {value}")
        elif (label, value) not in dropped:
            dropped.append((label, value))
    if bad:
        notices.append(f"The link's comparison no longer matches this selection; ignored {len(bad)} "
                       f"refinement value(s): {', '.join(b[:40] for b in bad[:5])}.")
    raw_models = split_list(query.get("sxmod"))
    models = [m for m in dict.fromkeys(raw_models) if m in explanation.rows]
    if len(models) < len(raw_models):
        notices.append(f"Ignored {len(raw_models) - len(models)} excluded model id(s) from the link that are "
                       "not in the selection.")
    flat = query.get("sflat")
    if flat not in (None, "0", "1"):
        notices.append(f"Ignored sflat={flat[:20]!r} from the link: expected 1 or 0.")
    return Refinement(vars_, tuple(dropped), tuple(models), flat == "1")


def refinement_from_controls(expl: Explanation, mode: str | None, vars_value: list | None,
                             kept: dict[int, list | None], xmod: list | None, auto: bool) -> Refinement:
    """The refinement the controls show, by name. `kept`: variable index -> ticked value indexes
    (a missing variable keeps all); `auto`: the ticked variables are the automatic ones."""
    variables = expl.variables
    dropped = tuple((v.label, value_text(v, val)) for k, v in enumerate(variables) if k in kept
                    for j, val in enumerate(v.values) if j not in set(x for x in items(kept[k]) if _is_index(x)))
    picked = None if auto else tuple(variables[k].label for k in items(vars_value)
                                     if _is_index(k) and k < len(variables))
    return Refinement(picked, dropped, tuple(m for m in items(xmod) if text(m)), mode == "flat")


def _is_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
