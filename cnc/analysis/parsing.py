"""Numbers from untrusted text (URL values, typed input): None for anything that is not plainly
the number asked for, so a hostile link can only be ignored, never crash a view."""
from __future__ import annotations

import math
import re


def parse_float(value: str | None) -> float | None:
    """A finite float or None (for 'nan', 'inf', junk)."""
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


_INDEX = re.compile(r"[0-9]{1,9}")


def parse_index(value: str | None) -> int | None:
    """A non-negative int written in ASCII digits (at most 9), else None. `str.isdigit()` and
    `int()` disagree on "²" and accept "١٢", " 5", "1_000": links use this one rule."""
    return int(value) if isinstance(value, str) and _INDEX.fullmatch(value) else None
