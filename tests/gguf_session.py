"""The GGUF variants of tests/gguf_models.py, built once per machine (`shared_variants`), for every
GGUF test file; llama-cpp-python on llama.cpp's cached build (`llama_cpp_python`)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import gguf_models
from tests.llama_cpp_tools import VERSION, install_python_package


@pytest.fixture(scope="session")
def gguf_variants(tmp_path_factory) -> dict[str, Path]:
    """{"base": HF dir, "f16", "q8_0", "q4_k_m", "q2_k": .gguf files} in one folder."""
    return gguf_models.shared_variants()


@pytest.fixture(scope="session")
def gguf_folder(gguf_variants, tmp_path_factory) -> Path:
    """A folder of variants as a user has it: the base directory and three quantizations (links)."""
    folder = tmp_path_factory.getbasetemp() / "gguf-folder"
    if not folder.exists():
        folder.mkdir()
        for key in ("base", "q8_0", "q4_k_m", "q2_k"):
            os.symlink(gguf_variants[key], folder / gguf_variants[key].name)
    return folder


def prompted_folder(variants: dict[str, Path], folder: Path, n: int) -> Path:
    """The base, Q8_0 and Q2_K (links) and a prompts.jsonl of `n` questions: a folder with Behaviors."""
    for key in ("base", "q8_0", "q2_k"):
        os.symlink(variants[key], folder / variants[key].name)
    gguf_models.instances_file(folder, n=n).rename(folder / "prompts.jsonl")
    return folder


@pytest.fixture(scope="session")
def llama_cpp_python() -> str:
    """llama-cpp-python installed on the cached llama.cpp build (.ci/run installs it up front; here
    only if missing: ~15 s, llama.cpp is not compiled again). Returns its version."""
    import importlib
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("llama_cpp_python")
    except PackageNotFoundError:
        found = None
    if found != VERSION:
        install_python_package()
        importlib.invalidate_caches()
    import llama_cpp

    return llama_cpp.__version__
