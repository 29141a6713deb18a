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
