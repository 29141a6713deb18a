"""The Behaviors tab's instance panel for generative models: the prompt, the reference answer(s),
the base's output and each selected model's, side by side, with the words that changed marked.

User text (prompts, references, outputs) is only ever passed as component children, so Dash
escapes it: changed words are `html.Ins` / `html.Del` components around plain strings, never HTML.
With no instance open, the top-changes rows show their first (most changed) instance.
"""
from __future__ import annotations

import math

from dash import html

from cnc.analysis import generative_behaviors as G
from cnc.analysis.behavior_cells import format_number
from cnc.analysis.output_diff import DELETED, INSERTED
from cnc.server.context import AppContext

EMPTY = "(empty output)"
HINT = ("Click an instance row to see its prompt, reference and each model's output, with the words "
        "that differ from the base's output marked.")


def outputs_panel(ctx: AppContext, models: list[str], table: G.GenerativeTable | None, inst: int | None,
                  top: int | None = None, top_title: str = "the top change in outputs") -> list:
    """The panel for instance `inst`, else for `top` (the first row, labelled `top_title`)."""
    task = ctx.task_data() or {}
    shown = inst if inst is not None else top
    if shown is None or table is None:
        return [html.Div(HINT, className="hint")]
    prompts, refs = task.get("prompts") or [], task.get("references") or []
    if not 0 <= shown < min(len(prompts), table.n):
        return [html.Div("That instance is not in the evaluation set.", className="hint")]
    title = f"Instance #{shown}" + ("" if inst is not None else f" · {top_title}")
    references = [str(r) for r in (refs[shown] if shown < len(refs) else [])]
    rows = table.instance_detail(shown)
    scores = [s for s in table.score_names if any(math.isfinite(r["scores"].get(s, math.nan)) for r in rows)]
    return [
        html.H4(title),
        *_harness_line(task, shown),
        html.Div("Prompt", className="bh-out-label"),
        html.Blockquote(str(prompts[shown]), className="bh-text bh-prompt"),
        html.Div(["Reference: ", *_joined([html.B(r, className="bh-ref") for r in references], " | ")],
                 className="bh-true"),
        html.Table([
            html.Thead(html.Tr([html.Th("Model"), html.Th("Output (changes vs the base's)"),
                                *(html.Th(G.score_label(s)) for s in scores)])),
            html.Tbody([_output_row(ctx, r, k == 0, scores) for k, r in enumerate(rows)]),
        ], className="bh-detail-table bh-outputs"),
        html.Div(_footnote(rows), className="bh-out-note"),
    ]


def _harness_line(task: dict, i: int) -> list:
    """For lm-evaluation-harness instances: which task and document, and the choices of a
    multiple-choice one (its outputs are the chosen choices)."""
    keys, choices = task.get("keys") or [], task.get("choices") or []
    if i >= len(keys):
        return []
    parts = [f"Task {keys[i][0]} · document {keys[i][1]}"]
    if i < len(choices) and choices[i]:
        parts.append(" · choices: " + " | ".join(str(c) for c in choices[i]))
    return [html.Div("".join(parts), className="bh-out-label bh-doc")]


def _joined(parts: list, sep: str) -> list:
    out: list = []
    for k, p in enumerate(parts):
        out.extend([sep, p] if k else [p])
    return out


def diff_spans(segments: list[tuple[str, str]]) -> list:
    """Word-diff segments as components: inserted words in <ins>, removed base words in <del>."""
    out: list = []
    for k, (op, words) in enumerate(segments):
        if k:
            out.append(" ")
        if op == INSERTED:
            out.append(html.Ins(words, className="bh-ins"))
        elif op == DELETED:
            out.append(html.Del(words, className="bh-del"))
        else:
            out.append(html.Span(words))
    return out


def _output_row(ctx: AppContext, r: dict, is_base: bool, score_names: list[str]) -> html.Tr:
    model = ctx.experiment.models.get(r["model"])
    name = (model.label if model else r["model"]) + (" (base)" if is_base else "")
    text = diff_spans(r["segments"])
    if not r["text"].strip():  # an empty answer (a broken model's first symptom) must not look like a blank cell
        text += [" " if text else "", html.Span(EMPTY, className="bh-empty-out")]
    cls = "bh-out" + ("" if is_base or not r["changed"] else " bh-out-changed")
    cells = [html.Td(name, className="bh-out-model"), html.Td(text, className=cls)]
    for s in score_names:
        v = r["scores"].get(s, math.nan)
        if s == G.EXACT and math.isfinite(v):
            cells.append(html.Td("✓" if v >= 0.5 else "✗", className="ok" if v >= 0.5 else "bad"))
        else:
            cells.append(html.Td(format_number(v, ".2f")))
    return html.Tr(cells, **{"data-model": r["model"]})


def _footnote(rows: list[dict]) -> str:
    """KL, top-1 agreement and repetition of the compared models, in words."""
    parts = []
    for r in rows[1:]:
        bits = []
        if math.isfinite(r["kl"]):
            bits.append(f"KL {format_number(r['kl'], '.3g')} and top-1 agreement "
                        f"{format_number(r['top1'], '.0%')} vs {r['kl_reference'] or 'its root'}")
        if math.isfinite(r["repetition"]) and r["repetition"] > 0:
            bits.append(f"repeated n-grams {format_number(r['repetition'], '.0%')}")
        if bits:
            parts.append(f"{r['model']}: " + ", ".join(bits))
    return "; ".join(parts) + ("." if parts else "")
