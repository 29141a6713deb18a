"""Tables as CSV text for the download buttons (Selection Details, Behaviors).

Cells that are text and would start a spreadsheet formula (`=`, `+`, `-`, `@`, tab, CR) get a
leading apostrophe, so a model id such as `=HYPERLINK(...)` stays text when the file is opened;
numbers are written as numbers (a negative change stays -0.8, not text), NaN and None as empty.
"""
from __future__ import annotations

import csv
import io
import math
from typing import Any, Iterable, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([cell(h) for h in header])
    writer.writerows([cell(v) for v in row] for row in rows)
    return out.getvalue()
