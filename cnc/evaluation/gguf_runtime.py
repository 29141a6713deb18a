"""Which kernels run a GGUF model's Behaviors: llama.cpp's own (the real quantized arithmetic) when
llama-cpp-python is installed, else transformers' float kernels on the dequantized weights.

The choice joins the model's cache key (`runtime_key`), so outputs computed by one are never read
as the other's: installing, upgrading or removing llama-cpp-python recomputes the GGUF models, and
`CNC_GGUF_RUNTIME=transformers` forces the float path. Decided from package metadata, without
importing llama_cpp (the web server computes keys and never runs a model). No torch here.
"""
from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

from cnc.analysis.model_runtime import FLOAT, is_gguf_path

__all__ = ["FLOAT", "llama_cpp_label", "llama_cpp_version", "runtime_key", "uses_llama_cpp"]
ENV = "CNC_GGUF_RUNTIME"
CHOICES = ("auto", "llama.cpp", "transformers")


def llama_cpp_version() -> str | None:
    """The installed llama-cpp-python's version (None: not installed)."""
    try:
        return version("llama_cpp_python")
    except PackageNotFoundError:
        return None


def _choice(strict: bool) -> str:
    """The variable's value; a bad one is an error where a model is run (`strict`), "auto" where a
    key is computed (a page must not fail on it)."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value in CHOICES:
        return value
    if strict:
        from cnc.experiment.errors import TaskError

        raise TaskError(f"environment variable {ENV}={value!r}: use one of {', '.join(CHOICES)}.")
    return "auto"


def uses_llama_cpp(checkpoint: str | os.PathLike | None, strict: bool = False) -> bool:
    """A `.gguf` checkpoint runs through llama.cpp: llama-cpp-python is installed and not turned off."""
    if not is_gguf_path(checkpoint):
        return False
    choice = _choice(strict)
    if strict and choice == "llama.cpp" and llama_cpp_version() is None:
        from cnc.experiment.errors import TaskError

        raise TaskError(f"{ENV}=llama.cpp but llama-cpp-python is not installed: pip install -r "
                        "requirements-llamacpp.txt, or unset the variable to use transformers' float kernels.")
    return choice != "transformers" and llama_cpp_version() is not None


def llama_cpp_label() -> str:
    return f"llama.cpp kernels (llama-cpp-python {llama_cpp_version()})"


def runtime_key(checkpoint: str | os.PathLike | None) -> str | None:
    """What a model's cache key adds for its runtime: the llama.cpp version for a GGUF run by
    llama.cpp, None for everything else (whose keys stay as they were)."""
    return f"llama.cpp {llama_cpp_version()}" if uses_llama_cpp(checkpoint) else None
