"""The pieces of generative evaluation: stop strings, generation settings, bad task answers,
and a model whose reference tokens differ from its root's (another tokenizer): no KL rather than a wrong one."""
import contextlib

import numpy as np
import pytest
import torch

from cnc.evaluation import evaldata, generation
from cnc.experiment.errors import TaskError
from tests.tiny_lm import TinyLMTask, save_checkpoint


def test_cut_at_stop_takes_the_earliest():
    assert generation.cut_at_stop("Paris.\nQ: next", ["Q:", "\n"]) == "Paris."
    assert generation.cut_at_stop("no stop here", ["\n"]) == "no stop here"
    assert generation.cut_at_stop("abc", []) == "abc"


def test_settings_merge_task_defaults_and_config():
    task = TinyLMTask()  # generation = {"max_new_tokens": 8, "stop": []}
    assert generation.settings(task, None) == {"max_new_tokens": 8, "stop": []}
    assert generation.settings(task, {"stop": ["\n"]}) == {"max_new_tokens": 8, "stop": ["\n"]}
    task.generation = {"max_new_tokens": 8, "temperature": 0.7}
    with pytest.raises(TaskError, match="task.generation"):
        generation.settings(task, None)
    task.generation = {"stop": "\n"}
    with pytest.raises(TaskError, match="list of non-empty strings"):
        generation.settings(task, None)


def test_eval_texts_reads_every_way_and_rejects_bad_items():
    class Batched:
        kind = "generative"

        def batches(self, batch_size):
            yield ["p1", "p2"], ["r1", ["r2a", "r2b"]]

    assert evaldata.eval_texts(Batched(), evaldata.Loading(2)) == (["p1", "p2"], [["r1"], ["r2a", "r2b"]])

    class Bad:
        kind = "generative"

        def dataset(self):
            return [("p", ["r"]), (3, ["r"])]

    with pytest.raises(TaskError, match="instance 1"):
        evaldata.eval_texts(Bad(), evaldata.Loading())


def test_generate_must_return_one_string_per_prompt(tmp_path):
    task = TinyLMTask()
    save_checkpoint(tmp_path / "m.pt")
    data = generation.text_set(task, evaldata.Loading(4), None)
    task.generate = lambda model, prompts, n: ["only one"]
    with pytest.raises(TaskError, match="list of 4 strings"):
        list(generation.model_batches(task, task.load_model(str(tmp_path / "m.pt")), data, 4))


def test_other_reference_tokens_give_no_kl(tmp_path):
    task = TinyLMTask()
    save_checkpoint(tmp_path / "base.pt")
    save_checkpoint(tmp_path / "small.pt", prune=0.3)
    data = generation.text_set(task, evaldata.Loading(4), None)
    run = lambda path, mid, ref: generation.evaluate(  # noqa: E731
        task, task.load_model(str(path)), data, 4, torch.device("cpu"), mid, "base", ref, np.zeros(0, np.int64),
        contextlib.nullcontext)
    base, topk = run(tmp_path / "base.pt", "base", None)
    assert base["kl_reference"] == "base" and topk["ids"].shape == (int(base["ntokens"].sum()), 32)
    same, _ = run(tmp_path / "small.pt", "small", topk)
    assert same["kl_reference"] == "base" and same["kl"].shape == topk["targets"].shape
    other = {**topk, "targets": topk["targets"] + 1}
    differs, _ = run(tmp_path / "small.pt", "small", other)
    assert differs["kl"] is None and differs["top1"] is None and differs["kl_reference"] is None
    assert differs["texts"] == same["texts"] and np.array_equal(differs["nll"], same["nll"])
