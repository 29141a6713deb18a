"""Metric values as tables and exports print them (d3-format specs, the subset metrics use)."""
import pytest

from cnc.experiment.formatting import MISSING, format_value


@pytest.mark.parametrize("fmt, value, text", [
    (".1%", 0.5, "50.0%"), (",d", 12345.2, "12,345"), (".3g", 0.1234, "0.123"), (".2f", 3.14159, "3.14"),
    (".2s", 1500, "1.5k"), (None, 0.123456, "0.1235"), ("bogus", 2.0, "2"),
    # changes (the derived "... change vs root" metrics): a sign on gains as well as losses
    ("+.1%", -0.048, "-4.8%"), ("+.1%", 0.0123, "+1.2%"), ("+.3g", 0.5, "+0.5"), ("+,d", 1200, "+1,200"),
    ("+.2s", 1500, "+1.5k"), ("+.1%", 0.0, "+0.0%"),
])
def test_d3_specs(fmt, value, text):
    assert format_value(fmt, value) == text


def test_missing_values():
    assert format_value("+.1%", None) == MISSING and format_value(".1%", float("nan")) == MISSING
