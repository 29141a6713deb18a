"""Model picker entries read like the map's labels and the Pareto chips: a name a person gave, else
the recipe, shortened where the listed models are alike but never to the same text, then the id;
the whole recipe on hover (cnc/ui/model_picker.py). On the reference's files, the demos' and a
user-style file whose operations have parameters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from dash._utils import stringify_id

from cnc.analysis.recipe_text import recipe_text
from cnc.app.webapp import build_app
from cnc.experiment.config import load_config
from cnc.ui import model_picker
from tests.dash_client import call_with, find_key

FIXTURES = Path(__file__).parent / "fixtures"
FILES = ["user_parametrised.yaml", "digits_demo_models.yaml", "text_demo_models.yaml", "t5_recipes_models.json",
         "imagenet_branches_models.json", "original_model_info.json"]
SEARCHES = ["", "prune", "0.3", "int8", "restore"]


@pytest.mark.parametrize("name", FILES)
def test_entries_are_distinct_short_and_end_with_the_id(name):
    exp = load_config(FIXTURES / name).experiment
    for search in SEARCHES:
        opts = model_picker.options(exp, None, search)
        labels = [o["label"] for o in opts]
        assert len(set(labels)) == len(labels), (search, labels)
        for o in opts:
            mid = o["value"]
            assert o["label"] == mid or o["label"].endswith(" · " + mid), o
            assert len(o["label"]) <= model_picker.LABEL_WIDTH + len(" · ") + len(mid), o
            recipe = recipe_text(exp, mid)
            lines = o["title"].split("\n")
            assert mid in lines and (not recipe or recipe in lines), o  # the whole recipe on hover


def test_parametrised_siblings_keep_what_differs():
    exp = load_config(FIXTURES / "user_parametrised.yaml").experiment
    label = {o["value"]: o["label"] for o in model_picker.options(exp)}
    # ids that say nothing ("g10") are preceded by the recipe, not by the id again
    assert label["g10"] == "global magnitude prune 0.1 · g10" and label["g30"] == "global magnitude prune 0.3 · g30"
    assert "bits 8" in label["g30-ft-q8"] and "bits 4" in label["g30-ft-q4"]
    assert "gs 32" in label["g30-ft-q4g32"] and "gs 128" in label["g30-ft-q4"]
    assert "epochs 20" in label["g30-ft20"] and "epochs 5" in label["g30-ft"]


def test_the_search_callback_sends_the_short_entries(tmp_path, monkeypatch):
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext

    monkeypatch.delenv("CNC_AUTH", raising=False)
    monkeypatch.delenv("CNC_AUTH_FILE", raising=False)
    config = load_config(FIXTURES / "user_parametrised.yaml", cache_dir=tmp_path / "cache")
    app = build_app(AppContext(config=config, store=SummaryStore(config.cache_dir)))
    client = app.server.test_client()
    r = call_with(app, client, find_key(app, model_picker.FOUND, "data"), {
        (stringify_id(model_picker.PICKER), "search_value"): "q4",
        (stringify_id(model_picker.PICKER), "value"): ["g10"],
    }, trigger=0)
    assert r.status_code == 200, r.data[:300]
    out = json.loads(r.data)["response"]
    found = {o["value"]: o for o in out[stringify_id(model_picker.FOUND)]["data"]}
    assert set(found) == {"g30-ft-q4", "g30-ft-q4g32", "g10"}
    assert found["g10"]["label"] == "global magnitude prune 0.1 · g10"
    assert found["g30-ft-q4g32"]["title"].endswith("quantize weights bits 4, group_size 32")
