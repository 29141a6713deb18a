"""What callbacks read from the browser (component values, stores) is untrusted JSON: any type,
any size. These helpers turn it into the shapes the views expect, dropping what does not fit,
so a crafted request or a stale store never reaches the analysis code as a surprise type."""
from __future__ import annotations

import math
from typing import Any, Collection


def ids(value: Any, known: Collection[str]) -> list[str]:
    """Unique known string ids, in order (anything else is dropped)."""
    if not isinstance(value, (list, tuple)):
        return []
    return [v for v in dict.fromkeys(v for v in value if isinstance(v, str)) if v in known]


def one_of(value: Any, allowed: Collection[str], default: Any = None) -> Any:
    """`value` when it is one of the allowed strings, else the default."""
    return value if isinstance(value, str) and value in allowed else default


def text(value: Any, default: Any = None) -> Any:
    """A string, else the default."""
    return value if isinstance(value, str) else default


def mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def number(value: Any) -> float | None:
    """A finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def count(value: Any) -> int:
    """A click counter: a non-negative int, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
