"""20 concurrent simulated users against gunicorn on loopback: zero errors (timings are printed
by `python -m cnc.bench`, not asserted)."""
from cnc.bench.load import load_scenario


def test_twenty_users_no_errors():
    result = load_scenario(200, users=20, sessions=1)
    assert result["requests"] == 20 * 6
    assert result["errors"] == 0, result
