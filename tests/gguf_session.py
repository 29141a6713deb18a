"""The GGUF variants of tests/gguf_models.py, built once per machine (`shared_variants`), for every
GGUF test file."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import gguf_models


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
