"""Pareto front: directions, ties, missing values."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cnc.analysis.pareto import pareto_front, step_shape

PTS = [("a", 1.0, 0.70), ("b", 2.0, 0.80), ("c", 3.0, 0.75), ("d", 4.0, 0.90), ("e", 2.5, 0.60)]


def test_lower_x_higher_y():
    # size (lower better) vs accuracy (higher better)
    assert pareto_front(PTS, x_higher_is_better=False, y_higher_is_better=True) == ["a", "b", "d"]


def test_higher_x_higher_y():
    assert pareto_front(PTS, x_higher_is_better=True, y_higher_is_better=True) == ["d"]


def test_lower_x_lower_y():
    assert pareto_front(PTS, x_higher_is_better=False, y_higher_is_better=False) == ["a", "e"]


def test_higher_x_lower_y():
    # e (2.5, 0.60) beats b and a on y; d has the best x
    assert pareto_front(PTS, x_higher_is_better=True, y_higher_is_better=False) == ["e", "c", "d"]


def test_ties_keep_identical_points_and_drop_weakly_dominated():
    pts = [("a", 1.0, 0.9), ("a2", 1.0, 0.9), ("b", 1.0, 0.8), ("c", 2.0, 0.9), ("d", 0.5, 0.5)]
    # a/a2 identical: both kept. b same x, worse y: dominated. c same y, worse x: dominated.
    assert pareto_front(pts, False, True) == ["d", "a", "a2"]


def test_missing_values_take_no_part():
    pts = [("a", None, 1.0), ("b", 1.0, float("nan")), ("c", 2.0, 0.5)]
    assert pareto_front(pts, False, True) == ["c"]
    assert pareto_front([("a", None, None)], False, True) == []
    assert pareto_front([], True, True) == []


def test_step_shape():
    assert step_shape(False) == "hv" and step_shape(True) == "vh"


def _dominates(p, q, xh, yh):
    sx, sy = (1 if xh else -1), (1 if yh else -1)
    ge = sx * p[1] >= sx * q[1] and sy * p[2] >= sy * q[2]
    gt = sx * p[1] > sx * q[1] or sy * p[2] > sy * q[2]
    return ge and gt


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=25), st.booleans(), st.booleans())
def test_matches_brute_force(coords, xh, yh):
    pts = [(f"p{i}", float(x), float(y)) for i, (x, y) in enumerate(coords)]
    expected = {p[0] for p in pts if not any(_dominates(q, p, xh, yh) for q in pts)}
    front = pareto_front(pts, xh, yh)
    assert set(front) == expected
    xs = [dict((p[0], p[1]) for p in pts)[m] for m in front]
    assert xs == sorted(xs)
