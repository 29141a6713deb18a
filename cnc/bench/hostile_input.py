"""hostile_input.*: how fast and in how much memory hostile files are refused (issue 33), and what the
limits cost a legitimate file.

Each hostile file is read with the app's loader (cnc.experiment.bounded_load) until it raises;
`ms` is the wall time to the error and `alloc_peak_mb` the peak of Python allocations meanwhile
(tracemalloc; PyYAML's loader is pure Python). Before the limits, the 1 KB alias bomb in a tag
took 77 s and 3.2 GB once printed, and 100,000 nested `[` ended in a RecursionError.
`hostile_input.legit` loads a synthetic experiment file with the bounded loader and with plain
`yaml.safe_load`, so the checks' overhead shows.
"""
from __future__ import annotations

import json
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

from cnc.bench import median_ms
from cnc.experiment.bounded_load import load_data_file
from cnc.experiment.errors import ExperimentError
from cnc.experiment.synthetic import write_experiment


def alias_bomb(levels: int = 9) -> str:
    """About 1 KB of YAML anchors that expand to 10**(levels + 1) strings (tests use it too)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


HOSTILE = {
    "deep_yaml": ("deep.yaml", lambda: "models: " + "[" * 100_000),
    "deep_json": ("deep.json", lambda: "[" * 100_000),
    "alias_bomb_tag": ("tag.yaml", lambda: alias_bomb() + "models:\n  - {id: a, tag: *l9}\n"),
    "alias_bomb_parameters": ("params.yaml", lambda: alias_bomb() + "models:\n  - {id: a}\n  - {id: b, base: a, "
                                                                     "operation: {name: p, parameters: {x: *l9}}}\n"),
}


def _refusal(path: Path) -> dict:
    """Wall time to the error, then (a second run, traced, since tracing slows pure Python) the peak."""
    def attempt() -> bool:
        try:
            load_data_file(path)
        except ExperimentError:
            return True
        return False

    t0 = time.perf_counter()
    refused = attempt()
    ms = (time.perf_counter() - t0) * 1000
    tracemalloc.start()
    attempt()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"ms": round(ms, 2), "alloc_peak_mb": round(peak / (1 << 20), 3), "refused": refused,
            "file_kb": round(path.stat().st_size / 1024, 1)}


def scenarios(quick: bool = False) -> list[dict]:
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, (file, text) in HOSTILE.items():
            path = folder / file
            path.write_text(text())
            records.append({"scenario": f"hostile_input.{name}", **_refusal(path)})
        huge = folder / "huge.yaml"
        with open(huge, "wb") as fh:
            fh.truncate(1 << 30)  # 1 GB, sparse
        records.append({"scenario": "hostile_input.one_gb_file", **_refusal(huge)})
        models = 200 if quick else 2000
        legit = folder / "legit.yaml"
        legit.write_text(yaml.safe_dump(json.loads(write_experiment(models, folder / "legit.json").read_text())))
        text = legit.read_text()
        records.append({"scenario": "hostile_input.legit", "models": models, "file_kb": round(len(text) / 1024, 1),
                        "ms": median_ms(lambda: load_data_file(legit), repeat=3),
                        "plain_safe_load_ms": median_ms(lambda: yaml.safe_load(text), repeat=3)})
    return records
