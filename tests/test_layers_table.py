"""The Layers table's hand-written component JSON against Dash's own `html.*` encoding, its CSV
export against the analysis functions, paging, and the compact histogram codes at scale."""
from __future__ import annotations

import csv
import io
import json

import plotly.utils
import pytest
from dash import html

from cnc.analysis import layers as L
from cnc.bench.layers import _SyntheticCtx
from cnc.ui import layers as ui
from cnc.ui import layers_table
from cnc.ui.ids import cid
from tests.test_layers_callbacks import SEL, TinyCtx, state

encode = lambda c: json.loads(json.dumps(c, cls=plotly.utils.PlotlyJSONEncoder))  # noqa: E731


def _no_null_children(node):
    """Dash encodes an element without children as `children: null`; the renderer treats that as
    absent, which is what the hand-written form sends."""
    if isinstance(node, dict):
        props = node.get("props")
        if isinstance(props, dict) and props.get("children", 0) is None:
            del props["children"]
        for v in node.values():
            _no_null_children(v)
    elif isinstance(node, list):
        for v in node:
            _no_null_children(v)
    return node


@pytest.fixture(scope="module")
def ctx():
    return TinyCtx()


def test_hand_written_json_is_what_html_components_encode_to():
    h = layers_table.h
    cases = [
        (h("Td", [h("Canvas", className="hist", width=120, height=30, **{"data-h": "0A,,"}), "Δ 1.0%"],
           className="layers-cell", title="tip"),
         html.Td([html.Canvas(className="hist", width=120, height=30, **{"data-h": "0A,,"}), "Δ 1.0%"],
                 className="layers-cell", title="tip")),
        (h("Button", "▸", id=cid("layers", "toggle", node="a.b"), n_clicks=0, className="layers-toggle"),
         html.Button("▸", id=cid("layers", "toggle", node="a.b"), n_clicks=0, className="layers-toggle")),
        (h("Div", className="mix-bar", style={"backgroundImage": "linear-gradient(90deg, red 0% 10%)"}),
         html.Div(className="mix-bar", style={"backgroundImage": "linear-gradient(90deg, red 0% 10%)"})),
        (h("Table", [h("Thead", h("Tr", [h("Th", "Module")])), h("Tbody", [])], className="layers-table",
           **{"data-colors": "#fff", "data-units": "60"}),
         html.Table([html.Thead(html.Tr([html.Th("Module")])), html.Tbody([])], className="layers-table",
                    **{"data-colors": "#fff", "data-units": "60"})),
    ]
    for ours, dash_form in cases:
        assert encode(ours) == _no_null_children(encode(dash_form))


def test_every_element_of_a_real_table_is_a_known_html_component(ctx):
    body, _, _ = ui.update(ctx, SEL, "layers", state(mode="weights", open="*"), None, None)
    seen = set()

    def walk(node):
        if isinstance(node, dict) and "namespace" in node:
            assert node["namespace"] == "dash_html_components" and hasattr(html, node["type"]), node["type"]
            allowed = set(getattr(html, node["type"])()._prop_names)
            assert set(node["props"]) <= allowed | {k for k in node["props"] if k.startswith("data-")}, node["type"]
            seen.add(node["type"])
            walk(node["props"].get("children"))
        elif isinstance(node, list):
            for n in node:
                walk(n)

    walk(encode(body))
    assert {"Table", "Tr", "Td", "Canvas", "Button"} <= seen


def test_csv_has_every_row_of_the_view_with_the_shown_values(ctx):
    for mode in ("sparsity", "weights"):
        st = state(mode=mode, open="*", sort="change")
        text = ui.view_csv(ctx, SEL, st)
        rows = list(csv.reader(io.StringIO(text)))
        table = ui.layer_table(ctx, SEL["models"], SEL["base"], "params")
        expect = L.visible_rows(table, "change", None)
        what = "sparsity" if mode == "sparsity" else "change vs base"
        assert rows[0] == ["module", "type", "parameters"] + [f"{m} {what}" for m in SEL["models"]]
        assert [r[0] for r in rows[1:]] == [table.tree.names[i] for i in expect]
        values = L.shown_values(table, mode)
        for r, i in zip(rows[1:], expect):
            assert [float(v) if v else None for v in r[3:]] == pytest.approx(
                [None if v != v else v for v in values[i].tolist()], rel=1e-5)


def test_pages_of_a_large_tree():
    big = _SyntheticCtx(4, 300)
    sel = {"models": big.ids, "base": big.ids[0]}
    st = {**state(mode="weights", open="*")}
    body, opened, part, page = ui.paged_update(big, sel, "layers", st, None, None)
    rows = [n for n in _walk(encode(body)) if n.get("type") == "Tr"]
    assert len(rows) == ui.PAGE_ROWS + 1  # + the header row
    assert page == 0 and f"of {len(L.visible_rows(ui.layer_table(big, big.ids, big.ids[0], 'params'), 'tree', None)):,}" \
        in json.dumps(encode(body), ensure_ascii=False)
    _, _, _, page = ui.paged_update(big, sel, "layers", {**st, "page": page}, ui.NEXT, 1)
    assert page == 1
    _, _, _, page = ui.paged_update(big, sel, "layers", {**st, "page": 10**6}, ui.NEXT, 2)
    assert page < 10 ** 6  # clamped to the last page
    _, _, _, page = ui.paged_update(big, sel, "layers", {**st, "page": 3}, ui.SORT, "change")
    assert page == 0


def test_page_lives_in_the_url():
    notices: list[str] = []
    assert ui.state_from_query({"lpage": "3"}, notices)["page"] == 2 and notices == []
    assert ui.url_params({**state(), "page": 2})["lpage"] == 3
    assert "lpage" not in ui.url_params({**state(), "page": 0})  # the first page is the default
    for bad in ("0", "-1", "²", "1.5", "x", "9" * 40, ""):
        notices = []
        assert ui.state_from_query({"lpage": bad}, notices)["page"] == 0 and len(notices) == 1
    big = _SyntheticCtx(4, 300)
    sel = {"models": big.ids, "base": big.ids[0]}
    st = state(mode="weights", open="*")
    _, _, part, page = ui.paged_update(big, sel, "layers", st, ui.NEXT, 1)
    assert page == 1 and part["lpage"] == 2  # the pager writes the page into the URL part
    notices = []
    _, shown = ui.render_body(big, sel, {**st, "page": 10**5}, notices)
    assert 0 < shown["page"] < 10**5 and ui.url_params(shown)["lpage"] == shown["page"] + 1
    assert any("past the last page" in n for n in notices)


def _walk(node):
    if isinstance(node, dict):
        yield node
        yield from _walk(node.get("props", {}).get("children"))
    elif isinstance(node, list):
        for n in node:
            yield from _walk(n)
