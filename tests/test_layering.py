"""The import contracts in pyproject.toml hold, and they would catch the imports they forbid: a copy
of the package with one deliberately wrong import must fail `lint-imports`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                           "lint_imports_command()", "--config", str(tree / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "cnc", tree / "cnc", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_package_keeps_its_contracts(clean_copy):
    ran = lint_imports(clean_copy)
    assert ran.returncode == 0, ran.stdout + ran.stderr


@pytest.mark.parametrize("module, code, broken", [
    ("cnc/analysis/_bad.py", "import dash\n", "Analysis is pure"),
    ("cnc/experiment/_bad.py", "from cnc.server import context\n", "Stages depend only on the stages below them"),
    ("cnc/ui/_bad.py", "import torch\n", "Views never load a model"),
    ("cnc/toolkit/_bad.py", "from cnc.precompute import store\n", "The toolkit for users' scripts stands apart"),
])
def test_a_wrong_import_breaks_its_contract(clean_copy, tmp_path, module, code, broken):
    tree = tmp_path / "tree"
    shutil.copytree(clean_copy, tree)
    (tree / module).write_text(code)
    ran = lint_imports(tree)
    assert ran.returncode != 0
    assert f"{broken}" in ran.stdout and "BROKEN" in ran.stdout.split(broken, 1)[1].splitlines()[0], ran.stdout


def test_architecture_diagram_is_drawn_from_the_current_imports():
    ran = subprocess.run([sys.executable, str(ROOT / "scripts" / "architecture.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr


def test_no_module_is_long():
    """Modules stay readable: past ~500 lines a module holds more than one concept."""
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "cnc").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 520}
    assert not long, f"split these modules: {long}"
