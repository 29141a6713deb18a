"""llama.cpp's converter and tools, built from the `llama-cpp-python` sdist (it vendors llama.cpp).

Tests make real GGUF files, KLD reports and llama-bench results with them, offline. The build takes
about 6 minutes on 2 cores, so it is cached outside the repository, keyed by the sdist's version:
``$CNC_LLAMA_CPP_CACHE`` (default ``~/.cache/cnc-llama-cpp``)/<version>/. ``python -m
tests.llama_cpp_tools`` builds it ahead of the tests (``.ci/run`` does) and prints the tool paths;
``--install-python`` also installs llama-cpp-python itself from the same sdist without compiling
llama.cpp a second time (`install_python_package`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from cnc.evaluation.gguf_runtime import llama_cpp_version

VERSION = "0.3.36"
TARGETS = ("llama-quantize", "llama-perplexity", "llama-bench")


@dataclass(frozen=True)
class LlamaCpp:
    root: Path  # the vendored llama.cpp source tree

    @property
    def converter(self) -> Path:
        return self.root / "convert_hf_to_gguf.py"

    @property
    def gguf_py(self) -> Path:
        """The converter's own gguf package (the `gguf` wheel lacks what the converter uses)."""
        return self.root / "gguf-py"

    def tool(self, name: str) -> Path:
        return self.root / "build" / "bin" / name

    def convert(self, model_dir: Path, out: Path, outtype: str = "f16") -> Path:
        env = {**os.environ, "PYTHONPATH": str(self.gguf_py), "NO_LOCAL_GGUF": ""}
        subprocess.run([sys.executable, str(self.converter), str(model_dir), "--outfile", str(out),
                        "--outtype", outtype], check=True, env=env, capture_output=True, text=True)
        return out

    def quantize(self, src: Path, out: Path, qtype: str) -> Path:
        subprocess.run([str(self.tool("llama-quantize")), str(src), str(out), qtype],
                       check=True, capture_output=True, text=True)
        return out


def cache_root() -> Path:
    return Path(os.environ.get("CNC_LLAMA_CPP_CACHE", Path.home() / ".cache" / "cnc-llama-cpp"))


def _sdist(folder: Path) -> Path:
    tarball = folder / f"llama_cpp_python-{VERSION}.tar.gz"
    if not tarball.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                        f"llama-cpp-python=={VERSION}", "-d", str(folder)], check=True)
    return tarball


def ensure_built() -> LlamaCpp:
    """Build once per machine (file-locked, so parallel test processes wait for one build)."""
    folder = cache_root() / VERSION
    folder.mkdir(parents=True, exist_ok=True)
    root = folder / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
    tools = LlamaCpp(root)
    done = folder / "built.ok"
    with FileLock(str(folder / ".lock")):
        if done.exists() and all(tools.tool(t).exists() for t in TARGETS):
            return tools
        if not root.exists():
            with tarfile.open(_sdist(cache_root())) as tar:
                tar.extractall(folder, filter="data")
        build = root / "build"
        shutil.rmtree(build, ignore_errors=True)
        subprocess.run(["cmake", "-S", str(root), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                        "-DLLAMA_CURL=OFF", "-DGGML_NATIVE=OFF", "-DLLAMA_BUILD_SERVER=OFF"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(build), "-j2", "--target", *TARGETS], check=True,
                       stdout=subprocess.DEVNULL)
        done.write_text(VERSION)
    return tools


def install_python_package() -> Path:
    """`pip install llama-cpp-python==VERSION` from the cached sdist with its CMake option
    LLAMA_BUILD=OFF (the Python package alone: ~15 s instead of a second ~6 min build), then this
    build's shared libraries copied into the package's `lib` folder, where it loads them from (so no
    LLAMA_CPP_LIB_PATH is needed in any process). Returns that folder."""
    tools = ensure_built()
    env = {**os.environ, "CMAKE_ARGS": "-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF"}
    with FileLock(str(cache_root() / VERSION / ".lock")):
        if llama_cpp_version() != VERSION:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
                            str(_sdist(cache_root()))], check=True, env=env)
        importlib.invalidate_caches()  # installed by a subprocess just now: this process must look again
        lib = Path(importlib.util.find_spec("llama_cpp").origin).parent / "lib"
        lib.mkdir(exist_ok=True)
        for so in sorted((tools.root / "build" / "bin").glob("lib*.so*")):
            if so.name.startswith(("libllama.so", "libggml")):
                target = lib / so.name
                target.unlink(missing_ok=True)
                shutil.copy2(so, target, follow_symlinks=False)  # links stay links (libllama.so -> .so.0)
    return lib


if __name__ == "__main__":
    built = ensure_built()
    if "--install-python" in sys.argv[1:]:
        print(install_python_package())
    print(built.converter)
    for name in TARGETS:
        print(built.tool(name))
