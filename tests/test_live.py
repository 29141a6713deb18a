"""Models logged while the app runs appear, and are summarized in the background."""
import time
from pathlib import Path

from cnc import Tracker
from cnc.app.cli import load
from cnc.experiment.config import load_experiment
from tests.tiny_task import make_model


def test_new_models_appear_and_precompute_in_background(tmp_path):
    t = Tracker(tmp_path / "run", task="tests.tiny_task:TinyTask")
    t.log_model("base", metrics={"Acc": 0.9}, model=make_model())
    ctx = load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False, background=True)
    assert list(ctx.experiment.models) == ["base"] and ctx.status("base") == "ready"

    t.log_model("late", base="base", operation="prune", metrics={"Acc": 0.8}, model=make_model())
    assert ctx.live.check(force=True)
    assert "late" in ctx.experiment.models and ctx.version == 1
    deadline = time.time() + 60
    while ctx.status("late") != "ready" and time.time() < deadline:
        time.sleep(0.2)
    assert ctx.status("late") == "ready"
    assert ctx.outputs("late")["probs"].shape == (40, 3)


def test_broken_edit_keeps_last_good_experiment(tmp_path):
    t = Tracker(tmp_path / "run")
    t.log_model("a", metrics={"Acc": 0.9})
    ctx = load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False, background=True)
    (tmp_path / "run" / "experiment.yaml").write_text("models: [{id: a}, {id: a}]\n")
    assert not ctx.live.check(force=True)
    assert list(ctx.experiment.models) == ["a"]
    assert "duplicate model id" in ctx.status_line()


def test_startup_failures_show_in_the_header(tmp_path):
    t = Tracker(tmp_path / "run", task="tests.tiny_task:TinyTask")
    t.log_model("base", metrics={"Acc": 0.9}, model=make_model())
    t.log_model("broken", base="base", operation="prune", metrics={"Acc": 0.8}, model=make_model())
    Path(load_experiment(tmp_path / "run" / "experiment.yaml").models["broken"].checkpoint).write_bytes(b"not a checkpoint")
    ctx = load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False)
    assert "1 model(s) failed to summarize (broken)" in ctx.status_line()
    assert ctx.status("broken").startswith("failed: ") and ctx.status("base") == "ready"


def test_views_are_warmed_for_each_loaded_experiment(tmp_path):
    t = Tracker(tmp_path / "run")
    t.log_model("a", metrics={"Acc": 0.9})
    ctx = load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False, background=True)
    warmed, calls = [], []

    def failing(_ctx):
        calls.append(1)
        raise RuntimeError("a warmer that fails only loses its head start")

    ctx.warm_with(failing)
    ctx.warm_with(lambda c: warmed.append(c.experiment))
    t.log_model("b", base="a", operation="prune", metrics={"Acc": 0.8})
    assert ctx.live.check(force=True)
    deadline = time.time() + 30
    while len(warmed) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert [list(e.models) for e in warmed] == [["a"], ["a", "b"]]  # at start, then after the reload
    assert warmed[-1] is ctx.experiment and len(calls) == 2
    assert not load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False).live.background  # tests: no threads


def test_a_request_waits_for_the_running_warm_up(tmp_path):
    """The first page request after a load waits for the warm-up instead of repeating its work;
    the warm-up itself (which renders the page too) never waits for itself."""
    t = Tracker(tmp_path / "run")
    t.log_model("a", metrics={"Acc": 0.9})
    ctx = load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False, background=True)
    done, inside = [], []

    def slow(c):
        inside.append(c.await_warm(timeout=5))  # in the warm-up thread: at once
        time.sleep(0.4)
        done.append(c.version)

    ctx.warm_with(slow)
    ctx.pin()
    try:
        start = time.time()
        assert ctx.await_warm(timeout=5) and done == [0] and inside == [True]
        assert time.time() - start < 3
    finally:
        ctx.unpin()
    t.log_model("b", base="a", operation="prune", metrics={"Acc": 0.8})
    assert ctx.live.check(force=True)
    assert ctx.await_warm(timeout=5) and done == [0, 1]
    assert load(str(tmp_path / "run"), str(tmp_path / "cache"), progress=False).await_warm(timeout=0)  # no threads


def test_benchmark_results_written_while_the_app_runs_are_read(tmp_path, monkeypatch):
    """A watched benchmarks folder: a result file added or rewritten after
    start reloads the experiment (tests/fixtures/benchmarks: real vLLM and guidellm results)."""
    import shutil

    import yaml

    from cnc.server import live

    fixtures = Path(__file__).parent / "fixtures" / "benchmarks"
    (tmp_path / "bench").mkdir()
    exp = tmp_path / "experiment.yaml"
    exp.write_text(yaml.safe_dump({"benchmarks": {"folder": "bench"},
                                   "models": [{"id": "base", "metrics": {"Accuracy": 0.9}},
                                              {"id": "int4", "base": "base", "operation": "quantize"}]}))
    ctx = load(str(exp), str(tmp_path / "cache"), progress=False, background=True)
    assert "TTFT mean" not in ctx.experiment.metrics
    monkeypatch.setattr(live, "CHECK_EVERY", 0.0)
    assert not ctx.live.check()
    shutil.copy(fixtures / "vllm" / "results.json", tmp_path / "bench" / "base.json")
    assert ctx.live.check()
    assert ctx.experiment.models["base"].metrics["TTFT mean"] is not None
    (tmp_path / "bench" / "int4").mkdir()
    shutil.copy(fixtures / "guidellm" / "benchmarks.json", tmp_path / "bench" / "int4" / "report.json")
    assert ctx.live.check() and "openai_http" in ctx.experiment.devices
    assert not ctx.live.check()  # nothing changed since
