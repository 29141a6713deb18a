"""The command line: --help, bad configs exit with one clear paragraph and no traceback."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_help_explains_flags():
    out = run("--help").stdout
    for flag in ("--config", "--host", "--port", "--cache-dir", "--precompute-only", "--debug"):
        assert flag in out


def test_bad_config_is_one_paragraph_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: {models: []}\ncolour: red\n")
    res = run("--config", str(bad), "--cache-dir", str(tmp_path / "c"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "bad.yaml" in res.stderr and "unknown key 'colour'" in res.stderr


def test_model_info_json_precomputes_nothing_and_exits(tmp_path):
    res = run("--config", str(ROOT / "tests/fixtures/original_model_info.json"), "--cache-dir",
              str(tmp_path / "c"), "--precompute-only")
    assert res.returncode == 0, res.stderr
    assert "warning: operation 'Calibrate'" in res.stderr


def test_debug_is_refused_on_a_network_interface(tmp_path):
    """Regression: --debug with --host 0.0.0.0 exposed the Werkzeug debugger (remote code execution)."""
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        res = run("--debug", "--host", host, "--config", str(ROOT / "tests/fixtures/original_model_info.json"),
                  "--cache-dir", str(tmp_path / "c"))
        assert res.returncode == 2 and "refusing" in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert "serving" not in res.stderr


def test_loopback_hosts():
    from cnc.app.cli import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org", ""))
