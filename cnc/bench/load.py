"""load.*: parsing and validating large experiment files."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cnc.bench import median_ms
from cnc.experiment import load_experiment
from cnc.synthetic import make_experiment


def _write(n: int, folder: Path) -> Path:
    exp = make_experiment(n)
    data = {
        "metrics": [{"name": m.name, "format": m.format, "unit": m.unit} for m in exp.metrics.values()],
        "operations": [{"name": o.name, "parameters": o.parameters} for o in exp.operations.values()],
        "models": [{"id": m.id, "base": m.base, "tag": m.tag, "metrics": m.metrics,
                    "operation": {"name": m.operation.name, "parameters": m.operation.parameters}
                    if m.operation else None} for m in exp.models.values()],
    }
    path = folder / f"exp{n}.json"
    path.write_text(json.dumps(data))
    return path


def scenarios(quick: bool) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (100, 1000) if quick else (100, 1000, 5000):
            path = _write(n, Path(tmp))
            out.append({"scenario": "load.parse_experiment", "models": n, "ms": median_ms(lambda: load_experiment(path)),
                        "bytes": path.stat().st_size})
    return out
