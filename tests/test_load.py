"""Recorded browser traffic on the demo (with its task), replayed by 20 users against gunicorn on
loopback: zero errors, and every area of the main job is exercised. Timings are printed by
`python -m cnc.bench --only load`, not asserted."""
import json
import os

import pytest

from cnc.bench.browser import chromium_paths
from cnc.bench.load import COMPARED, EXPLAINED, demo_load
from cnc.bench.traffic import is_callback, record_demo_session

# step -> a callback output that step must have sent (the areas the load test promises to cover)
COVERS = {
    "overview.open": "page.children",
    "overview.map_by_operation": '{"cnc":"map","role":"data"}.data',
    "overview.select": '{"cnc":"overview","role":"selection"}.data',
    "behaviors.rows_instances": '{"cnc":"behaviors","role":"state"}.data',
    "behaviors.sort": '"role":"grid","v":["ALL"]}.getRowsResponse',
    "behaviors.page": '"role":"grid","v":["ALL"]}.getRowsResponse',
    "layers.open": '{"cnc":"layers","role":"body"}.children',
    "layers.mode": '{"cnc":"layers","role":"body"}.children',
    "layers.expand": '{"cnc":"layers","role":"body"}.children',
}


@pytest.fixture(scope="module")
def recorded(demo_ctx):
    if chromium_paths() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing: .ci/run must install them")
        pytest.skip("chromium not installed")
    from cnc.app.webapp import build_app

    return record_demo_session(build_app(demo_ctx), COMPARED, EXPLAINED)


def test_recorded_session_covers_the_main_job(recorded):
    outputs = {s.name: [json.loads(body)["output"] for _, path, body in s.requests if is_callback(path)]
               for s in recorded}
    for step, output in COVERS.items():
        assert any(output in o for o in outputs[step]), (step, outputs[step])
    sorts = [json.loads(b)["inputs"] for _, p, b in next(s for s in recorded if s.name == "behaviors.sort").requests
             if is_callback(p) and b"getRowsRequest" in b]
    assert "flips" in json.dumps(sorts)  # the grid asked for rows sorted by the clicked column
    page = next(s for s in recorded if s.name == "behaviors.page")
    asked = [json.loads(b)["inputs"][0][0]["value"] for _, p, b in page.requests
             if is_callback(p) and b"getRowsRequest" in b]
    assert any(r["startRow"] >= 100 for r in asked), asked  # scrolling asked for a later block


def test_twenty_users_replaying_it_get_no_errors(recorded, demo_cache_dir):
    [rec] = demo_load(demo_cache_dir, users=[20], sessions=1, steps=recorded)
    assert rec["errors"] == 0, rec
    assert rec["callbacks"] == 20 * sum(s.callbacks for s in recorded)
    assert rec["p95_ms"] is not None
