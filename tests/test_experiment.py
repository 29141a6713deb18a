"""Loaders: our YAML format, the original model-info JSON unchanged, and every bad-input case."""
import json
from pathlib import Path

import pytest

from cnc.experiment.config import load_experiment
from cnc.experiment.errors import ExperimentError
from cnc.experiment.forest import parse_experiment

FIXTURES = Path(__file__).parent / "fixtures"


def _models(*models, metrics=None, operations=None):
    return {"metrics": metrics or [], "operations": operations or [], "models": list(models)}


def test_original_json_loads_unchanged():
    exp = load_experiment(FIXTURES / "original_model_info.json")
    assert list(exp.models) == ["resnet", "p50", "p50-q8", "p50-cal"]
    assert exp.operations["Prune"].parameters == ["amount", "method"]  # mapping form of parameters
    assert exp.operations["Quantize"].parameters == ["bits"]
    assert "Calibrate" in exp.operations  # undeclared operation inferred
    assert exp.models["p50"].metrics["Latency"] is None  # null stays missing, not zero
    assert exp.metrics["Energy"].higher_is_better is False  # undeclared metric inferred
    assert exp.metrics["Disk Size"].higher_is_better is False and exp.metrics["Accuracy"].higher_is_better
    assert exp.metrics["Accuracy"].format == ".1%" and exp.metrics["Disk Size"].unit == "MB"
    assert exp.children["p50"] == ["p50-q8", "p50-cal"] and exp.roots == ["resnet"]
    assert exp.path_to_root("p50-q8") == ["resnet", "p50", "p50-q8"]
    assert any("Calibrate" in w for w in exp.warnings) and any("Energy" in w for w in exp.warnings)


def test_our_yaml_with_checkpoints(tmp_path):
    (tmp_path / "exp.yaml").write_text(
        "metrics:\n  - {name: Acc, format: '.2f', higher_is_better: true, primary: true}\n"
        "operations:\n  - {name: prune, parameters: [amount]}\n"
        "models:\n  - {id: a, checkpoint: ck/a.pt, metrics: {Acc: null}}\n"
        "  - {id: b, base: a, operation: {name: prune, parameters: {amount: 0.5}}, metrics: {Acc: 0.8}}\n"
    )
    exp = load_experiment(tmp_path / "exp.yaml")
    assert exp.models["a"].checkpoint == str(tmp_path / "ck" / "a.pt")
    assert exp.models["a"].metrics["Acc"] is None  # null is missing
    assert exp.models["b"].operation.parameters == {"amount": 0.5}


def test_base_without_operation_is_a_warning():
    exp = parse_experiment(_models({"id": "a"}, {"id": "b", "base": "a"}))
    assert exp.models["b"].operation.name == "unknown"
    assert any("no operation" in w for w in exp.warnings)


@pytest.mark.parametrize("data, words", [
    (_models({"id": "a"}, {"id": "a"}), ["duplicate model id 'a'", "unique"]),
    (_models({"id": "a", "base": "zz"}), ["model 'a'", "base 'zz'", "Fix"]),
    (_models({"id": "a", "base": "b", "operation": "x"}, {"id": "b", "base": "a", "operation": "x"}),
     ["cycle", "Fix"]),
    (_models({"id": "a", "metrics": {"Acc": "high"}}), ["model 'a'", "'Acc'", "not a number", "null"]),
    (_models({"id": "a", "metrics": {"Acc": True}}), ["not a number"]),
    (_models({"tag": "no id"}), ["no 'id'"]),
    ({"models": "nope"}, ["'models' must be a list"]),
    (_models({"id": "a", "operation": {"parameters": {}}}), ["model 'a'", "operation"]),
])
def test_structural_faults_name_file_model_and_fix(data, words):
    with pytest.raises(ExperimentError) as err:
        parse_experiment(data, where="exp.json")
    msg = str(err.value)
    assert msg.startswith("exp.json")
    for w in words:
        assert w in msg


def test_syntax_errors_and_missing_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ExperimentError, match="bad.json: not valid JSON"):
        load_experiment(bad)
    with pytest.raises(ExperimentError, match="file not found"):
        load_experiment(tmp_path / "missing.yaml")


def test_metric_values_from_strings_and_null():
    exp = parse_experiment(_models({"id": "a", "metrics": {"x": "0.5", "y": "null", "z": None}}))
    assert exp.models["a"].metrics == {"x": 0.5, "y": None, "z": None}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "nan", "-inf", "1e999", 10 ** 400])
def test_non_finite_metric_values_are_errors(value):
    with pytest.raises(ExperimentError, match=r"x.json: model 'a' has metric 'y' = .*not a finite number"):
        parse_experiment(_models({"id": "a", "metrics": {"y": value}}), where="x.json")


def test_directory_loads_experiment_yaml(tmp_path):
    (tmp_path / "experiment.yaml").write_text(json.dumps(_models({"id": "solo"})))
    assert list(load_experiment(tmp_path).models) == ["solo"]
