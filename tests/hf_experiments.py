"""An HFTask experiment written to YAML and precomputed, as the command line would: for tests that
check what precompute stored against direct computations."""
from __future__ import annotations

import json
from pathlib import Path


def precomputed(folder: Path, models: list[str], options: dict, batch_size: int = 4, activation_sample: int = 3):
    """(config, store, report) of an experiment of `models` (YAML flow mappings: "{id: base,
    checkpoint: ...}") with an HFTask of `options`, precomputed on the CPU into folder/cache."""
    from cnc.experiment.config import load_config
    from cnc.precompute.run import precompute
    from cnc.precompute.store import SummaryStore

    (folder / "exp.yaml").write_text("models:\n" + "".join(f"  - {m}\n" for m in models))
    (folder / "cfg.yaml").write_text(f"experiment: exp.yaml\ntask: {{entry: 'cnc.evaluation.hf_task:HFTask', "
                                     f"options: {json.dumps(options)}, batch_size: {batch_size}, "
                                     f"activation_sample: {activation_sample}, device: cpu}}\n")
    cfg = load_config(folder / "cfg.yaml", cache_dir=folder / "cache")
    store = SummaryStore(cfg.cache_dir)
    return cfg, store, precompute(cfg, store, progress=False)
