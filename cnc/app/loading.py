"""Config -> AppContext, precomputing what is missing: what `cnc`, `cnc check`, tests and benchmarks open."""
from __future__ import annotations

import sys


def load(config_path: str, cache_dir: str | None, precompute: bool = True, progress: bool = True,
         background: bool = False, device: str | None = None, scheduler: str | None = None,
         workers: int | None = None):
    """Config -> AppContext, precomputing what is missing. Raises ConfigError/ExperimentError."""
    from cnc.experiment.config import load_config
    from cnc.precompute.lock import precompute_locked
    from cnc.precompute.store import SummaryStore
    from cnc.server.context import AppContext

    config = load_config(config_path, cache_dir=cache_dir)
    store = SummaryStore(config.cache_dir)
    failed: dict[str, str] = {}
    if precompute:
        failed = precompute_locked(config, store, progress=progress, device=device, scheduler=scheduler,
                                   workers=workers).failed
        if failed:
            print(f"[cnc] {len(failed)} model(s) could not be summarized; the app names them in its header and "
                  "notices:", file=sys.stderr)
            for mid, why in failed.items():
                print(f"[cnc]   {mid}: {why}", file=sys.stderr)
    ctx = AppContext(config=config, store=store, background=background)
    ctx.live.device, ctx.live.scheduler, ctx.live.workers = device, scheduler, workers
    ctx.live.progress.errors.update(failed)
    return ctx
