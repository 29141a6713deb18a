"""The links of `cnc check`'s Markdown summary open the right views in Chromium: the failing
model's Compare / Behaviors page on the gate's score against the base, and the Overview with both
models selected (real lm-evaluation-harness output, tests/lmeval_harness.py)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from cnc.app.cli import load, main
from tests.conftest import screenshot, wait_for
from tests.test_behaviors_browser import query_of, wait_until
from tests.test_lm_eval import write_experiment

APP = "http://cnc.example:8050"
GEN = "tiny_sums_gen/exact_match,strict-match"
MC = "tiny_sums_mc/acc"


def test_markdown_links_open_compare_and_overview(lmeval_runs, tmp_path: Path, serve, chrome):
    exp = write_experiment(tmp_path, lmeval_runs)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"metrics": {MC: {"min_recovery": 0.95}}, "max_flip_rate": 0.05}))
    code = main(["check", "--config", str(exp), "--policy", str(policy), "--cache-dir", str(tmp_path / "cache"),
                 "--markdown", str(tmp_path / "summary.md"), "--app-url", APP])
    assert code == 1
    links = re.findall(r"\[(overview|compare)\]\((http[^)]+)\)", (tmp_path / "summary.md").read_text())
    assert links, "the summary links each failing gate"
    url = serve(load(str(exp), str(tmp_path / "cache"), progress=False))

    compare = next(href for kind, href in links if kind == "compare" and "sc:acc" in href)
    chrome.get(compare.replace(APP, url))
    wait_for(chrome, ".bh-outputs tr[data-model='pruned']")
    wait_until(lambda: query_of(chrome).get("bmetric") == "sc:acc")
    q = query_of(chrome)
    assert q["models"] == "base,pruned" and q.get("tab", "behaviors") == "behaviors"
    assert q["bgroup"] == "attr:task:tiny_sums_mc"  # the gated task's documents only
    assert not [n.text for n in chrome.find_elements("css selector", ".notice") if "Ignored" in n.text]
    screenshot(chrome, "check_link_compare")

    flips = next(href for kind, href in links if kind == "compare" and "bmetric=flip" in href)
    chrome.get(flips.replace(APP, url))
    wait_until(lambda: query_of(chrome).get("bmetric") == "flip")

    overview = next(href for kind, href in links if kind == "overview")
    chrome.get(overview.replace(APP, url))
    wait_until(lambda: "2 models" in chrome.find_element("css selector", ".details-panel").text)
    assert query_of(chrome)["sel"] == "base,pruned"
    screenshot(chrome, "check_link_overview")
