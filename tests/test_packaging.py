"""The project installs as a package: a wheel with the assets and demo configs, a `cnc` console
command, `from cnc import Tracker` from any directory, and pinned requirements that agree with the
package metadata (so the Dockerfile's and CI's pins cannot drift from what `pip install .` asks)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def pins(path: Path) -> dict[str, str]:
    """name -> pinned version for `name==version` lines of a requirements file (and the files it includes)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
        elif "==" in line:
            req = Requirement(line)
            found[req.name.lower()] = next(iter(req.specifier)).version
    return found


def declared() -> dict[str, Requirement]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"]) + [r for extra in meta["optional-dependencies"].values() for r in extra]
    return {Requirement(r).name.lower(): Requirement(r) for r in reqs}


@pytest.mark.parametrize("name", sorted(p.name for p in ROOT.glob("requirements*.txt")))
def test_pinned_requirements_satisfy_the_package_metadata(name):
    meta = declared()
    for pkg, version in pins(ROOT / name).items():
        base = pkg.split("[")[0]
        assert base in meta, f"{name} pins {pkg}, which pyproject.toml does not declare: add it there"
        assert meta[base].specifier.contains(version, prereleases=True), \
            f"{name} pins {pkg}=={version} outside pyproject.toml's '{meta[base]}'"


def test_metadata_lists_every_runtime_pin():
    runtime = pins(ROOT / "requirements.txt")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {Requirement(r).name.lower() for r in meta}
    assert {p for p in runtime if p != "dask"} <= names  # dask is the `cluster` extra


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    return next(out.glob("compress_and_compare-*.whl"))


def test_wheel_carries_assets_and_demo_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cnc/assets/app.css" in names and "cnc/assets/model_map.js" in names
    assert "cnc/app/vendor/plotly-cnc.min.js" in names  # the partial plotly.js bundle the app serves
    assert "cnc/demos/digits/config.yaml" in names
    assert not any(n.startswith(("tests/", "examples/")) for n in names)


def venv_with_wheel(venv: Path, wheel: Path) -> Path:
    """A fresh venv with the wheel installed, whose heavy dependencies come from the environment
    running the tests (its site-packages directories, listed after the venv's own in a .pth file);
    returns its python. `--system-site-packages` would inherit the *base* interpreter's packages
    instead, which inside a virtualenv lack dash, torch and the rest (issue 33, finding 11)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    own = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                         capture_output=True, text=True, timeout=60).stdout.strip()
    running = [p for p in sys.path if ("site-packages" in p or "dist-packages" in p) and Path(p).is_dir()]
    Path(own, "running-environment.pth").write_text("".join(f"{p}\n" for p in running))
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    return py


def test_installed_package_works_outside_the_clone(wheel, tmp_path):
    """A fresh venv (reusing this environment's packages for the heavy dependencies), the wheel
    installed into it, and every command run from a directory that is not the clone."""
    venv = tmp_path / "venv"
    py, cnc = venv_with_wheel(venv, wheel), venv / "bin" / "cnc"
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    helped = subprocess.run([str(cnc), "--help"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "--config" in helped.stdout and "--demo" in helped.stdout

    script = work / "train.py"
    script.write_text(textwrap.dedent("""
        import cnc
        from cnc import Tracker
        from cnc.experiment.config import load_config
        from cnc.app.webapp import ASSETS

        t = Tracker("runs/exp")
        t.metric("Accuracy", higher_is_better=True)
        t.log_model("base", metrics={"Accuracy": 0.9})
        t.log_model("pruned", base="base", operation=("prune", {"amount": 0.5}), metrics={"Accuracy": 0.8})
        exp = load_config("runs/exp").experiment
        print(cnc.__file__)
        print(sorted(exp.models), exp.models["pruned"].base)
        print((ASSETS / "model_map.js").is_file())
    """))
    ran = subprocess.run([str(py), str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    where, models, assets = ran.stdout.strip().splitlines()[-3:]
    assert where.startswith(str(venv)), f"cnc was imported from {where}, not the installed package"
    assert models == "['base', 'pruned'] base"
    assert assets == "True"


def test_installed_package_serves_its_assets(wheel, tmp_path):
    py = venv_with_wheel(tmp_path / "venv", wheel)
    code = textwrap.dedent(f"""
        from cnc.app.cli import load
        from cnc.app.webapp import build_app
        ctx = load({str(ROOT / "tests/fixtures/original_model_info.json")!r}, {str(tmp_path / "cache")!r},
                   progress=False)
        client = build_app(ctx).server.test_client()
        for name in ("app.css", "model_map.js", "selection_table.js"):
            r = client.get("/assets/" + name)
            assert r.status_code == 200 and len(r.data) > 100, (name, r.status_code)
        print("served")
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ran = subprocess.run([str(py), "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and "served" in ran.stdout, ran.stderr[-2000:]
