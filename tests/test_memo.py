"""The shared memo: bounded by bytes across memos, least recently used first, single flight."""
import threading
import time

import numpy as np
import pytest

from cnc.server import memo
from cnc.server.memo import Memo


@pytest.fixture
def budget(monkeypatch):
    """A 10 MB budget shared only by this test's memos: memos of earlier tests (and their
    background warm-up threads) must not take part in what is evicted."""
    import weakref

    monkeypatch.setattr(memo, "_memos", weakref.WeakSet())
    monkeypatch.setattr(memo, "_used", [0])
    memo.set_budget(10 << 20)
    yield
    memo.set_budget(memo.DEFAULT_BUDGET)


def mb(k: float) -> np.ndarray:
    return np.zeros(int(k * (1 << 20)), np.uint8)


def test_bytes_budget_is_shared_and_evicts_least_recently_used(budget):
    a, b = Memo(100), Memo(100)
    a.get_or("x", lambda: mb(4))
    b.get_or("y", lambda: mb(4))
    a.get_or("x", lambda: pytest.fail("x is cached"))  # touch x: y is now the oldest
    b.get_or("z", lambda: mb(4))  # 12 MB > 10 MB: y goes
    assert "y" not in b.data and "x" in a.data and "z" in b.data
    assert memo.used_bytes() <= 10 << 20
    big = a.get_or("big", lambda: mb(20))  # over the whole budget: served, not kept
    assert big.nbytes == 20 << 20 and "big" not in a.data
    a.clear()
    b.clear()


def test_memory_mapped_arrays_cost_nothing(tmp_path, budget):
    path = tmp_path / "m.bin"
    mb(50).tofile(path)
    m = Memo(10)
    m.get_or("map", lambda: {"probs": np.memmap(path, dtype=np.uint8, mode="r")})
    assert "map" in m.data
    m.clear()


def test_concurrent_requests_for_one_key_compute_once():
    m, calls = Memo(10), []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return "table"

    results = []
    threads = [threading.Thread(target=lambda: results.append(m.get_or("k", slow))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and results == ["table"] * 5


def test_a_failed_computation_reaches_every_waiter_and_is_not_cached():
    m = Memo(10)

    def boom():
        time.sleep(0.1)
        raise ValueError("bad")

    errors = []

    def call():
        try:
            m.get_or("k", boom)
        except ValueError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == ["bad"] * 3 and m.get_or("k", lambda: "ok") == "ok"


@pytest.mark.parametrize("k", [10, 300])
def test_an_explanation_sizes_itself_close_to_what_it_holds(k):
    """Explanations size themselves by formula (cheap); the formula must stay near the truth."""
    import random
    import tracemalloc

    from cnc.analysis.comparability import explain_selection
    from cnc.experiment.synthetic import make_experiment

    exp = make_experiment(2 * k, seed=k)
    selection = random.Random(k).sample(list(exp.models), k)
    explain_selection(exp, selection)  # warm whatever the experiment caches
    tracemalloc.start()
    try:
        explanation = explain_selection(exp, selection)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0.5 * held <= memo.nbytes(explanation) <= 2 * held
