"""Config validation: unknown keys, wrong types, missing files, all with clear messages."""
import pytest

from cnc.experiment.config import load_config
from cnc.experiment.errors import ConfigError, ExperimentError


def write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_inline_experiment_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "title: T\nexperiment: {models: [{id: a, metrics: {Acc: 1}}]}\n"
                                      "defaults: {color: Acc}\n"), cache_dir=tmp_path / "c")
    assert cfg.title == "T" and list(cfg.experiment.models) == ["a"] and cfg.defaults.color == "Acc"
    assert cfg.cache_dir == (tmp_path / "c").resolve() and cfg.task is None


@pytest.mark.parametrize("text, words", [
    ("experiment: {models: []}\ncolour: x\n", ["unknown key 'colour'", "allowed"]),
    ("title: T\n", ["missing required key 'experiment'"]),
    ("experiment: {models: []}\ntask: {entry: 5, optionz: {}}\n", ["task.optionz", "task.entry"]),
    ("experiment: {models: []}\ntask: {entry: a:b, activation_sample: lots}\n", ["task.activation_sample"]),
    ("experiment: nowhere.yaml\n", ["nowhere.yaml", "does not exist"]),
    ("experiment: {models: [{id: a, metrics: {Acc: 1}}]}\ndefaults: {color: Size}\n",
     ["defaults.color", "'Size'", "Acc"]),
    ("- a list\n", ["mapping"]),
])
def test_bad_configs(tmp_path, text, words):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), cache_dir=tmp_path / "c")
    msg = str(err.value)
    assert "c.yaml" in msg
    for w in words:
        assert w in msg


def test_bad_inline_experiment_is_an_experiment_error(tmp_path):
    with pytest.raises(ExperimentError, match="duplicate model id"):
        load_config(write(tmp_path, "experiment: {models: [{id: a}, {id: a}]}\n"), cache_dir=tmp_path)


def test_json_model_info_is_a_metrics_only_config(tmp_path):
    p = write(tmp_path, '{"models": [{"id": "a"}]}', name="info.json")
    cfg = load_config(p, cache_dir=tmp_path / "c")
    assert cfg.task is None and list(cfg.experiment.models) == ["a"]
