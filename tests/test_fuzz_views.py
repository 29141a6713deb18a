"""Hostile links and hostile callback inputs: every page layout (through the router) and every
server callback, driven over HTTP with random values, answers without a server error.

"No server error" means no HTTP 500 and nothing logged by the failed-callback handler (which
would otherwise turn a crash into a notice and hide it from this test). Example counts are
bounded so the suite stays fast."""
from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnc import Tracker
from cnc.app.cli import load
from cnc.app.webapp import build_app
from tests.dash_client import call, request_body, server_callbacks
from tests.tiny_task import make_model

MODELS = ["base", "p50", "p90", "ft"]
METRICS = ["Acc", "Size"]
OVERVIEW_KEYS = ["map", "color", "size", "x", "y", "sel", "f.Acc", "f.Size", "f.Nope", "smetric", "svars",
                 "sval", "sxmod", "sflat", "view"]
COMPARE_KEYS = ["models", "base", "tab", "brows", "battr", "bmetric", "brel", "bfilt", "bmin", "bcmp", "bflips",
                "brank", "bsort", "bdir", "bgroup", "bi", "lmode", "lsort", "lsortby", "lscale", "lopen", "lpage", "view"]
HOSTILE = ["²", "١٢", "½", "1e999", "-1e999", "nan", "NaN", "inf", "-inf", "9" * 400, "-1", "0", "1", "2",
           "99999999999", "1_000", " 1", "", ",", ":", "::", "x" * 5000, "\x00", "%00", "../../etc/passwd",
           "<script>alert(1)</script>", "ghost", "class:²", "class:1", "class:99", "class:b", "attr:half:first",
           "attr:half:nope", "attr:", "0:1", "1:0", "²:³", "*", "-", "0,1", "0:0,1:1", "desc", "asc",
           "instances", "exemplars", "subgroups", "classes", "layers", "behaviors", "weights", "activations",
           "change", "op", "step", "half", "error", "flip", "broke", "fixed", "a" * 12]
REAL = MODELS + METRICS
text_values = st.sampled_from(HOSTILE + REAL) | st.text(max_size=30)
list_values = st.lists(text_values, max_size=4).map(",".join)
query_values = text_values | list_values


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    """A small live experiment with a real task (outputs, layers, subgroups), precomputed."""
    run = tmp_path_factory.mktemp("fuzz") / "run"
    t = Tracker(run, task="tests.tiny_task:TinyTask")
    t.metric("Acc", format=".1%", primary=True)
    t.metric("Size", unit="KB", higher_is_better=False)
    t.operation("prune", ["amount"])
    t.log_model("base", metrics={"Acc": 0.9, "Size": 10}, model=make_model())
    t.log_model("p50", base="base", operation=("prune", {"amount": 0.5}), metrics={"Acc": 0.85, "Size": 6},
                model=make_model())
    t.log_model("p90", base="base", operation=("prune", {"amount": 0.9}), metrics={"Acc": 0.6, "Size": 2},
                model=make_model())
    t.log_model("ft", base="p90", operation="finetune", metrics={"Acc": 0.8, "Size": None}, model=make_model())
    ctx = load(str(run), str(run.parent / "cache"), progress=False)
    app = build_app(ctx)
    return app, app.server.test_client()


class ErrorLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def errors():
    handler = ErrorLog()
    logger = logging.getLogger("cnc.callbacks")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def no_server_error(response, errors: ErrorLog, what: str) -> None:
    assert response.status_code != 500, f"{what}: HTTP 500 {response.data[:300]!r}"
    if errors.records:
        rec = errors.records[0]
        errors.records.clear()
        raise AssertionError(f"{what}: callback failed: {logging.Formatter().formatException(rec.exc_info)}")


def route(app, client, path: str, search: str):
    key = next(k for k in server_callbacks(app) if k.startswith("..page.children"))
    values = {"pathname": path, "search": search}
    body = request_body(app, key, lambda i, p: values.get(p) if i == "url" else None, [])
    return call(client, body)


def test_reported_link_renders_with_a_notice(app_client, errors):
    """Issue 14: `bgroup=class:²` made the router answer HTTP 500 (isdigit accepts "²", int() does not)."""
    app, client = app_client
    r = route(app, client, "/compare", "?models=base,p90&brows=instances&bgroup=class:%C2%B2")
    no_server_error(r, errors, "bgroup=class:²")
    assert r.status_code == 200 and "no such class or subgroup" in r.get_data(as_text=True)


@st.composite
def hostile_query(draw, keys):
    """A query of real keys (sometimes repeated, sometimes unknown) with hostile or real values."""
    pairs = draw(st.lists(st.tuples(st.sampled_from(keys) | st.text(max_size=6), query_values), max_size=8))
    return "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)


@given(data=st.data())
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_page_layout_survives_hostile_links(app_client, errors, data):
    app, client = app_client
    path = data.draw(st.sampled_from(["/", "/compare"]))
    search = data.draw(hostile_query(OVERVIEW_KEYS if path == "/" else COMPARE_KEYS))
    no_server_error(route(app, client, path, search), errors, f"{path}{search[:200]}")


# --------------------------------------------------------------------------- callbacks

STORE_KEYS = ["models", "base", "mode", "attribute", "metric", "rel", "filt", "threshold", "direction",
              "min_flips", "sort", "desc", "group", "inst", "points", "customdata", "curveNumber", "range", "x",
              "startRow", "endRow", "sortModel", "colId", "sort", "rowId", "selection", "vars", "xval", "xmod",
              "flat", "id", "index", "metric", "value", "lassoPoints", "bogus"]
scalars = (st.none() | st.booleans() | st.integers(-3, 5) | st.sampled_from([10 ** 30, -(10 ** 30), 2 ** 70])
           | st.floats(allow_nan=True, allow_infinity=True) | text_values)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(STORE_KEYS) | st.text(max_size=5), inner, max_size=5),
    max_leaves=12)


@given(data=st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_callback_survives_random_inputs(app_client, errors, data):
    app, client = app_client
    keys = sorted(server_callbacks(app))
    key = data.draw(st.sampled_from(keys))
    fills = data.draw(st.lists(st.sampled_from(REAL + ["ghost", 0, 1, 7, "h0"]) | st.text(max_size=4),
                               max_size=3, unique_by=str))

    def value(id_, prop):
        if prop == "id":  # the renderer sends a component's own id for State(..., "id")
            return id_
        return data.draw(json_values)

    trigger = data.draw(st.integers(0, 20))
    body = request_body(app, key, value, fills, trigger)
    no_server_error(call(client, body), errors, f"{key[:120]} {str(body)[:600]}")
