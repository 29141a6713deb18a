"""Filters: AND semantics, missing values, histograms, URL form (including hostile input)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cnc.analysis.filters import Filter, enabled_models, filter_params, from_data, histogram, parse_filters, to_data
from cnc.experiment.forest import parse_experiment
from cnc.server.urlstate import build_query, parse_query
from cnc.ui.filters import apply_brush, edit_values


def exp3():
    return parse_experiment({
        "metrics": [{"name": "acc"}, {"name": "lat", "higher_is_better": False}, {"name": "a:b,c"}],
        "models": [
            {"id": "x", "metrics": {"acc": 0.9, "lat": 5.0, "a:b,c": 1}},
            {"id": "y", "base": "x", "operation": "prune", "metrics": {"acc": 0.96, "lat": 3.0, "a:b,c": 2}},
            {"id": "z", "base": "x", "operation": "prune", "metrics": {"acc": 0.97, "lat": None, "a:b,c": 3}},
        ],
    })


def test_filters_combine_with_and_and_missing_fails():
    exp = exp3()
    assert enabled_models(exp, []) == ["x", "y", "z"]
    assert enabled_models(exp, [Filter("acc", 0.95)]) == ["y", "z"]
    assert enabled_models(exp, [Filter("acc", 0.95), Filter("lat", None, 5.0)]) == ["y"]  # z: latency unknown
    assert enabled_models(exp, [Filter("lat")]) == ["x", "y", "z"]  # an empty range filters nothing
    assert enabled_models(exp, [Filter("acc", 0.99)]) == []


def test_bounds_are_inclusive():
    f = Filter("acc", 0.9, 0.96)
    assert f.passes(0.9) and f.passes(0.96) and not f.passes(0.97) and not f.passes(None)


def test_histogram():
    counts, edges = histogram([1.0, 2.0, None, 3.0, 3.0], bins=2)
    assert counts == [1, 3] and edges == [1.0, 2.0, 3.0]
    counts, edges = histogram([4.0, 4.0])
    assert counts == [2] and edges[0] < 4.0 < edges[1]
    assert histogram([None, None]) == ([], [])


def test_url_round_trip_with_awkward_metric_names():
    exp = exp3()
    filters = [Filter("acc", 0.95, None), Filter("lat", None, 5.0), Filter("a:b,c", 1.5, 2.5), Filter("acc")]
    query = parse_query(build_query(filter_params(filters[:3])))
    notices: list[str] = []
    # build_query sorts keys, so filters come back ordered by metric name
    assert parse_filters(query, exp, notices) == sorted(filters[:3], key=lambda f: f.metric)
    assert notices == []
    assert parse_filters(parse_query(build_query(filter_params([Filter("acc")]))), exp, notices) == [Filter("acc")]


def test_hostile_filter_urls_are_dropped_with_notices():
    exp = exp3()
    for raw in ["f.acc=abc:", "f.acc=1:2:3", "f.acc=nan:", "f.acc=:inf", "f.acc=0.5",
                "f.nope=1:2", "f.%3Cscript%3E=1:2", "f.acc=" + "9" * 5000 + ":"]:
        notices: list[str] = []
        got = parse_filters(parse_query("?" + raw), exp, notices)
        assert got == [] or all(f.metric == "acc" for f in got), raw
        if raw != "f.acc=" + "9" * 5000 + ":":  # a huge finite-looking number overflows to inf
            assert notices, raw
    many = "&".join(f"f.acc={i}:" for i in range(100))
    assert len(parse_filters(parse_query("?" + many), exp, [])) <= 1


def test_store_form_drops_junk():
    exp = exp3()
    assert from_data(to_data([Filter("acc", 0.1, None)]), exp) == [Filter("acc", 0.1, None)]
    assert from_data([["nope", 1, 2], "junk", ["acc"], ["acc", "x", None], None], exp) == [Filter("acc", None, None)]
    assert from_data(None, exp) == []


def test_brush_and_typed_edits():
    assert apply_brush({"range": {"x": [0.95123456, 0.9]}}) == (0.9, 0.9512)
    assert apply_brush({"points": []}) is None and apply_brush(None) is None
    assert apply_brush({"range": {"x": ["a", 1]}}) is None
    exp = exp3()
    cur = [Filter("acc"), Filter("lat")]
    got = edit_values(exp, cur, {"acc": 0.9, "lat": "junk"}, {"acc": None, "lat": 2}, {})
    assert got == [Filter("acc", 0.9, None), Filter("lat", None, 2.0)]
    assert edit_values(exp, cur, {"acc": 5}, {"acc": 1}, {}) [0] == Filter("acc", 1.0, 5.0)  # swapped
    assert edit_values(exp, cur, {}, {}, {"lat": (1.0, 2.0)})[1] == Filter("lat", 1.0, 2.0)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=8))
def test_parse_filters_never_raises(query):
    exp = exp3()
    notices: list[str] = []
    for f in parse_filters({"f." + k: v for k, v in query.items()}, exp, notices):
        assert f.metric in exp.metrics
        assert f.lo is None or f.hi is None or f.lo <= f.hi
