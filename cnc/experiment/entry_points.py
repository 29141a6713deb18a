"""User code named in a config (`package.module:attr`): the task factory, the demo's builder."""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from cnc.experiment.errors import TaskError


def load_entry_point(spec: str, search_path: str | Path | None = None) -> Any:
    """Resolve 'package.module:attr' to the object it names; `search_path` (the config's folder)
    and the working directory are importable too, so a task module can sit next to its config
    or in the project the command runs from (a console command does not put it on sys.path)."""
    for where in (search_path, os.getcwd()):  # beside the config, or where the command runs
        if where is not None and str(where) not in sys.path:
            sys.path.append(str(where))
    if ":" not in spec:
        raise TaskError(f"entry point '{spec}' must look like 'package.module:function'.")
    module_name, attr = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # user code may raise anything on import
        raise TaskError(f"cannot import '{module_name}' for entry point '{spec}': {exc}") from exc
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise TaskError(f"'{module_name}' has no attribute '{attr}' (entry point '{spec}').") from None
    return obj
