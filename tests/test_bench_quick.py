"""Every benchmark area runs as a smoke test (`--quick`: smallest sizes, each timing once), so a
code change that breaks a benchmark fails CI instead of leaving the README's figures
unreproducible. Records are checked for shape and sanity (counts, non-negative times, payload
sizes), never for speed."""
from __future__ import annotations

import math
import os

import pytest

from cnc.bench import AREAS, run
from cnc.bench.__main__ import main
from cnc.bench.browser import chromium_paths

BROWSER = {"browser_timing", "first_paint"}  # needs headless Chromium
PREFIX = {"browser_timing": "browser.", "first_paint": "browser.", "generative_behaviors": "generative."}
COUNTS = ("models", "instances", "classes", "n", "modules", "rows", "users", "requests", "callbacks", "steps",
          "parameters", "compared", "workers")
SIZES = ("bytes", "bytes_per_model", "table_mb", "peak_rss_mb", "tracemalloc_peak_mb", "peak_mb")


def check_record(area: str, rec: dict) -> None:
    assert rec["scenario"].startswith(PREFIX.get(area, f"{area}.")), rec
    ms = rec["ms"]
    assert isinstance(ms, (int, float)) and math.isfinite(ms) and ms >= 0, rec
    for key, value in rec.items():
        if key.endswith("_ms") and value is not None and not key.startswith("added"):  # added_ms: a difference
            for v in value if isinstance(value, list) else [value]:  # runs_ms: one per run (None: timed out)
                assert v is None or isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, (key, rec)
        if key in COUNTS and isinstance(value, int):
            assert value > 0, (key, rec)
        if key in SIZES:
            assert isinstance(value, (int, float)) and value > 0, (key, rec)
        if key.startswith("ratio"):
            assert value > 0, (key, rec)
    assert rec.get("errors", 0) == 0, rec


@pytest.fixture
def browser_env():
    """Chromium present (else skip; in CI, fail)."""
    if chromium_paths() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing: .ci/run must install them")
        pytest.skip("chromium not installed")


@pytest.mark.parametrize("area", [a for a in AREAS if a not in BROWSER])
def test_area_runs_quick(area):
    records = run(area, quick=True)
    assert records, f"{area} --quick produced no records"
    for rec in records:
        check_record(area, rec)


@pytest.mark.parametrize("area", sorted(BROWSER))
def test_browser_area_runs_quick(area, browser_env):
    records = run(area, quick=True)
    assert records, f"{area} --quick produced no records"
    for rec in records:
        check_record(area, rec)
    assert all(r["ms"] is not None for r in records), records  # every browser scenario finished


def test_cli_prints_json_records(capsys):
    assert main(["--json", "--quick", "--only", "comparability"]) == 0
    out = capsys.readouterr().out
    assert '"scenario": "comparability.explain"' in out
