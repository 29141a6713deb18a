"""Which kernels run a GGUF model (cnc.evaluation.gguf_runtime) and how the views say it
(cnc.analysis.model_runtime): pure functions, no model run."""
from __future__ import annotations

import pytest

from cnc.analysis.model_runtime import FLOAT, runtime_notes, runtime_of
from cnc.evaluation import gguf_runtime
from cnc.experiment.errors import TaskError


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(gguf_runtime, "llama_cpp_version", lambda: "0.3.36")
    monkeypatch.delenv(gguf_runtime.ENV, raising=False)


def test_a_gguf_runs_on_llama_cpp_when_installed_and_its_key_names_the_version(installed):
    assert gguf_runtime.uses_llama_cpp("m/Q4_K_M.GGUF")
    assert gguf_runtime.runtime_key("m/q.gguf") == "llama.cpp 0.3.36"
    assert gguf_runtime.llama_cpp_label() == "llama.cpp kernels (llama-cpp-python 0.3.36)"
    assert gguf_runtime.runtime_key("m/model-dir") is None and gguf_runtime.runtime_key(None) is None


def test_the_variable_turns_llama_cpp_off_and_a_bad_value_is_an_error_only_where_models_run(installed, monkeypatch):
    monkeypatch.setenv(gguf_runtime.ENV, "transformers")
    assert gguf_runtime.runtime_key("q.gguf") is None
    monkeypatch.setenv(gguf_runtime.ENV, "llamacpp")
    assert gguf_runtime.runtime_key("q.gguf") == "llama.cpp 0.3.36"  # a page computes keys as for auto
    with pytest.raises(TaskError, match="CNC_GGUF_RUNTIME='llamacpp': use one of auto, llama.cpp, transformers"):
        gguf_runtime.uses_llama_cpp("q.gguf", strict=True)


def test_without_llama_cpp_python_transformers_runs_and_forcing_llama_cpp_says_how_to_install(monkeypatch):
    monkeypatch.setattr(gguf_runtime, "llama_cpp_version", lambda: None)
    monkeypatch.delenv(gguf_runtime.ENV, raising=False)
    assert not gguf_runtime.uses_llama_cpp("q.gguf", strict=True) and gguf_runtime.runtime_key("q.gguf") is None
    monkeypatch.setenv(gguf_runtime.ENV, "llama.cpp")
    with pytest.raises(TaskError, match="requirements-llamacpp.txt"):
        gguf_runtime.uses_llama_cpp("q.gguf", strict=True)


def test_outputs_stored_before_the_runtime_was_recorded_came_from_transformers():
    assert runtime_of({"texts": []}, "a.gguf") == FLOAT
    assert runtime_of({"runtime": "llama.cpp kernels (llama-cpp-python 0.3.36)"}, "a.gguf").startswith("llama.cpp")
    assert runtime_of({"texts": []}, "base-dir") is None and runtime_of(None, "a.gguf") is None


def test_one_note_per_runtime_in_model_order():
    llama = "llama.cpp kernels (llama-cpp-python 0.3.36)"
    notes = runtime_notes({"base": None, "q8": llama, "f16": FLOAT, "q2": llama})
    assert notes[0].startswith("q8, q2: run through llama.cpp kernels (llama-cpp-python 0.3.36) (the real quantized")
    assert notes[1].startswith("f16: run through transformers, dequantized to float (float kernels, not llama.cpp's")
    assert runtime_notes({"base": None}) == []
