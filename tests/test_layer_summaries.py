"""Per-module weight summaries stream over the tensors in pieces (no float32 copy of a whole
model) and equal the summaries of the flattened, concatenated values."""
import numpy as np
import torch

from cnc.evaluation import inspection


def reference(name: str, values: np.ndarray, edges: np.ndarray) -> dict:
    hist, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return {"count": values.size, "zeros": int(np.count_nonzero(values == 0)), "hist": hist,
            "sample": values[inspection.sample_positions(name, values.size)], "l2": np.linalg.norm(values.astype(np.float64)),
            "mean": values.astype(np.float64).mean(), "std": values.astype(np.float64).std()}


def test_streamed_summaries_equal_whole_array_ones(monkeypatch):
    monkeypatch.setattr(inspection, "STREAM", 1000)  # many pieces, split inside tensors
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(300, 70), torch.nn.LayerNorm(70), torch.nn.Linear(70, 5))
    with torch.no_grad():
        model[0].weight[:, :100] = 0  # zeros counted across pieces
        model[1].weight.fill_(1.0)
        model.half()  # pieces of a float16 model become float32 one at a time
    found = inspection.module_parameters(model)
    assert all(isinstance(t, torch.Tensor) for _, ts in found.values() for t in ts)  # not copied
    edges: dict = {}
    summaries = inspection.summarize_all(found, edges)
    for name, module in model.named_children():
        flat = np.concatenate([p.detach().float().reshape(-1).numpy() for p in module.parameters()])
        assert np.array_equal(edges[name], inspection.shared_edges(flat))
        want, got = reference(name, flat, edges[name]), summaries[name]
        assert got["count"] == want["count"] and got["zeros"] == want["zeros"]
        assert np.array_equal(got["hist"], want["hist"]) and got["hist"].sum() == flat.size
        assert np.array_equal(got["sample"], want["sample"]) and got["sample"].dtype == np.float32
        for key in ("l2", "mean", "std"):
            assert np.isclose(got[key], want[key], rtol=1e-9, atol=1e-12), key
    assert summaries["0"]["zeros"] >= 70 * 100


def test_uneven_edges_and_arrays_still_summarize():
    values = np.array([-5.0, -1.0, 0.0, 0.0, 0.5, 2.0, 9.0], np.float32)
    edges = np.array([-2.0, -0.5, 0.0, 1.0, 3.0])  # not uniform: binned by searching the edges
    got = inspection.summarize("m", "Linear", values, edges)
    want = reference("m", values, edges)
    assert np.array_equal(got["hist"], want["hist"]) and got["zeros"] == 2 and got["count"] == 7
    empty = inspection.summarize("e", "Linear", np.zeros(0, np.float32), inspection.shared_edges(np.zeros(0)))
    assert empty["count"] == 0 and empty["hist"].sum() == 0 and empty["mean"] == 0.0


def test_sample_positions_of_a_billion_elements_are_cheap():
    pos = inspection.sample_positions("big", 7_000_000_000)
    assert pos.size == inspection.SAMPLE_SIZE and np.all(np.diff(pos) > 0) and pos[-1] < 7_000_000_000


def test_activations_streamed_once_bins_are_known_equal_the_kept_ones():
    """The task's first model keeps its sample's outputs (they set the bins); later models fold
    each batch in as it comes. The same model summarized both ways gives the same summaries."""
    from cnc.evaluation import evaldata
    from cnc.evaluation.summarize import sample_indices
    from tests.tiny_task import TinyTask, make_model

    task = TinyTask()
    torch.manual_seed(0)
    model = make_model().eval()
    labels = task.eval_data()[1]
    sample = sample_indices(len(labels), 16)

    def summaries(edges: dict) -> tuple[dict, inspection.ActivationSummaries]:
        acts = inspection.ActivationSummaries(len(sample), edges)
        _, _, got = inspection.run_model(model, evaldata.iter_batches(task, evaldata.Loading(batch_size=7)), labels,
                                         sample, torch.device("cpu"), acts)
        assert got is acts
        return acts.finish(), acts

    edges: dict = {}
    first, acts = summaries(edges)
    assert set(edges) == set(first) and not acts.running  # kept, then set the bins
    later, acts = summaries(edges)
    assert set(acts.running) == set(first) and not acts.kept  # streamed batch by batch
    raw = inspection.module_activations(model, task.x[sample])
    for name, want in first.items():
        got = later[name]
        assert got["count"] == want["count"] == raw[name][1].size
        assert np.array_equal(got["hist"], want["hist"]) and np.array_equal(got["sample"], want["sample"])
        assert got["zeros"] == want["zeros"] and np.isclose(got["std"], want["std"], rtol=1e-9, atol=1e-12)
        # the summary of the whole sample's outputs at once (fixed shapes: the module's fixed positions;
        # a forward of other batch sizes may differ in the last bits)
        ref = inspection.summarize(name, raw[name][0], raw[name][1], edges[name])
        assert np.allclose(ref["sample"], got["sample"], rtol=1e-5, atol=1e-6)
