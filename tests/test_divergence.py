"""MSE / KL against a base: the streamed computation matches the formula, pairs are stored once
(at precompute against the root, on first use for any other base) and read back instead of the
probabilities."""
import numpy as np

from cnc.analysis import behavior_table
from cnc.analysis.divergence import EPS, ROWS, against_base, divergences
from cnc.precompute.run import precompute
from cnc.server.context import AppContext
from cnc.ui import behaviors_data
from tests.test_precompute import load, tiny  # noqa: F401 (fixture)


def softmax16(rng, n: int, c: int, zero_some: bool = False) -> np.ndarray:
    x = rng.standard_normal((n, c)).astype(np.float32) * 4
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    if zero_some:
        p[rng.random((n, c)) < 0.05] = 0
    return p.astype(np.float16)


def reference(base: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b, m = base.astype(np.float64), other.astype(np.float64)
    lb, lm = np.log(np.maximum(b, EPS)), np.log(np.maximum(m, EPS))
    return ((m - b) ** 2).mean(1), (b * (lb - lm)).sum(1)


def test_streamed_divergences_match_the_formula():
    rng = np.random.default_rng(0)
    n = 3 * ROWS + 17  # several row blocks and a short last one, split over two threads
    base, a, b = (softmax16(rng, n, 50, zero_some=True) for _ in range(3))
    out = divergences(base, [a, b, base])
    assert out.shape == (2, 3, n) and out.dtype == np.float32
    for k, other in enumerate((a, b)):
        mse, kl = reference(base, other)
        np.testing.assert_allclose(out[0, k], mse, rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(out[1, k], kl, rtol=1e-4, atol=1e-6)
    assert np.all(out[:, 2] == 0)  # identical outputs: exactly 0
    assert divergences(base[:0], [a[:0]]).shape == (2, 1, 0)


class Pairs:
    """A PairCache in a dict, counting what is read and written."""

    def __init__(self):
        self.stored, self.reads, self.writes = {}, 0, 0

    def get_divergence(self, base, model):
        self.reads += 1
        return self.stored.get((base, model))

    def put_divergence(self, base, model, values):
        self.writes += 1
        self.stored[(base, model)] = values


def test_stored_pairs_are_read_and_missing_ones_computed_once():
    rng = np.random.default_rng(1)
    probs = [softmax16(rng, 300, 20) for _ in range(3)]
    pairs = Pairs()
    stored = np.full((2, 300), 0.5, np.float32)
    pairs.stored[("base", "x")] = stored
    pairs.stored[("base", "bad")] = np.zeros((2, 7), np.float32)  # wrong length: recomputed
    mse, kl = against_base(["base", "x", "bad"], probs, pairs)
    assert np.all(mse[1] == 0.5) and np.all(kl[1] == 0.5)  # read, not recomputed from probs
    ref = divergences(probs[0], [probs[2]])[:, 0]
    assert np.array_equal(kl[2], ref[1]) and np.array_equal(mse[2], ref[0])
    assert np.all(mse[0] == 0) and np.all(kl[0] == 0)
    assert pairs.writes == 1 and np.array_equal(pairs.stored[("base", "bad")], ref)


def test_table_reads_pairs_without_touching_probabilities():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 20, 300)
    probs = {m: softmax16(rng, 300, 20) for m in ("base", "x")}
    pairs = Pairs()
    pairs.stored[("base", "x")] = np.ones((2, 300), np.float32)

    class Untouchable(np.ndarray):
        def __getitem__(self, item):
            if isinstance(item, slice) or (isinstance(item, tuple) and isinstance(item[0], slice)):
                raise AssertionError("probabilities read although the pair is stored")
            return super().__getitem__(item)

    def outputs(m):
        p = probs[m]
        return {"probs": p.view(Untouchable), "preds": p.argmax(1), "p_true": p[np.arange(300), labels]}

    table = behavior_table.build_table(labels, ["base", "x"], outputs, pairs=pairs)
    assert np.all(table.kl[1] == 1) and pairs.writes == 0


def test_precompute_stores_divergences_against_the_root(tiny):  # noqa: F811
    cfg, store = load(tiny)
    precompute(cfg, store, progress=False)
    ctx = AppContext(cfg, store)
    th = ctx.task_hash
    probs = {m: np.asarray(ctx.outputs(m)["probs"]) for m in "abc"}
    for m in "bc":  # c's parent is b, its root a
        stored = store.get_divergence(th, ctx._model_hash("a"), ctx._model_hash(m))
        assert stored is not None and stored.shape == (2, 40)
        assert np.array_equal(stored, divergences(probs["a"], [probs[m]])[:, 0])
    assert store.get_divergence(th, ctx._model_hash("b"), ctx._model_hash("c")) is None
    # a view based on b computes b -> c once and stores it for every later process
    behaviors_data.TABLES.clear()
    table = behaviors_data.table_for(ctx, ["b", "c"])
    expected = divergences(probs["b"], [probs["c"]])[:, 0]
    assert np.array_equal(table.kl[1], expected[1]) and np.array_equal(table.mse[1], expected[0])
    assert np.array_equal(store.get_divergence(th, ctx._model_hash("b"), ctx._model_hash("c")), expected)


def test_malformed_stored_divergence_counts_as_missing(tiny):  # noqa: F811
    cfg, store = load(tiny)
    store._set(("divergence", "t", "b", "m"), "not an array")
    assert store.get_divergence("t", "b", "m") is None
    store.put_divergence("t", "b", "m", np.ones((2, 5)))
    assert store.get_divergence("t", "b", "m").dtype == np.float32
