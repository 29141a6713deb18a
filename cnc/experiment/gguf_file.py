"""What a GGUF file says, read with llama.cpp's own `gguf` package (metadata and tensor index only:
the tensor data is memory-mapped and never read here).

A file that is not GGUF, is cut short, or holds a tensor type this `gguf` version does not know
raises `ExperimentError` naming the file and the fix, so a folder of variants can skip it with a notice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnc.experiment.errors import ExperimentError

MAGIC = b"GGUF"


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the file stores it; `shape` in numpy order (rows first), as dequantized."""

    name: str
    storage: str  # the GGML type name: F16, Q8_0, Q4_K, IQ2_XS, ...
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.n_bytes / max(self.n_elements, 1)


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    architecture: str
    name: str
    file_type: str  # "Q4_K_M", "F16", ... (general.file_type), or "" when the file does not say
    metadata: dict[str, Any]  # scalar and string fields (arrays such as the vocabulary left out)
    tensors: list[TensorInfo]
    base_models: list[dict[str, str]] = field(default_factory=list)  # general.base_model.N.{name, repo_url, ...}
    vocab_size: int = 0

    @property
    def parameters(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * sum(t.n_bytes for t in self.tensors) / max(self.parameters, 1)

    @property
    def storage_types(self) -> dict[str, int]:
        """Tensors per storage type."""
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.storage] = out.get(t.storage, 0) + 1
        return out


def is_gguf(path: str | Path) -> bool:
    """The file starts with GGUF's magic bytes (whatever its name ends with)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == MAGIC
    except OSError:
        return False


def file_type_name(value: int | None) -> str:
    """general.file_type as llama.cpp names it ("MOSTLY_Q4_K_M" -> "Q4_K_M")."""
    from gguf import LlamaFileType

    if value is None:
        return ""
    try:
        return LlamaFileType(int(value)).name.removeprefix("MOSTLY_").replace("ALL_F32", "F32")
    except ValueError:
        return f"type {value}"


def _scalar(field: Any) -> Any:
    from gguf import GGUFValueType

    if not field.types or field.types[0] == GGUFValueType.ARRAY:
        return None
    value = field.contents()
    return value


def read_gguf(path: str | Path) -> GGUFInfo:
    """The file's metadata and tensor index. Raises ExperimentError for anything but a sound GGUF."""
    from gguf import GGUFReader

    path = Path(path)
    if not is_gguf(path):
        raise ExperimentError(f"{path}: not a GGUF file (it does not start with the bytes 'GGUF'). "
                              "Fix: convert the model with llama.cpp's convert_hf_to_gguf.py, or remove the file.")
    try:
        reader = GGUFReader(path)
    except ValueError as exc:
        text = str(exc)
        if "is not a valid GGMLQuantizationType" in text:
            raise ExperimentError(f"{path}: holds a tensor type this reader does not know ({text}). "
                                  "Fix: upgrade the gguf package (requirements-quant.txt), or requantize "
                                  "the file to a common type (Q8_0, Q4_K_M).") from None
        raise ExperimentError(f"{path}: damaged or truncated GGUF file ({text}). Fix: copy or convert it again.") from None
    except (OSError, IndexError, KeyError, TypeError, AssertionError) as exc:
        raise ExperimentError(f"{path}: damaged or truncated GGUF file ({type(exc).__name__}: {exc}). "
                              "Fix: copy or convert it again.") from None
    meta: dict[str, Any] = {}
    for key, fld in reader.fields.items():
        try:
            value = _scalar(fld)
        except Exception:  # noqa: BLE001 - a field of an unusual type is just not listed
            value = None
        if value is not None:
            meta[key] = value
    tensors = [TensorInfo(t.name, t.tensor_type.name, tuple(int(d) for d in reversed(t.shape.tolist())),
                          int(t.n_elements), int(t.n_bytes)) for t in reader.tensors]
    last = max((t.data_offset + t.n_bytes for t in reader.tensors), default=0)
    if last > path.stat().st_size:
        raise ExperimentError(f"{path}: truncated GGUF file (its tensors need {last:,} bytes, the file has "
                              f"{path.stat().st_size:,}). Fix: copy or download it again.")
    bases = []
    for i in range(int(meta.get("general.base_model.count", 0) or 0)):
        prefix = f"general.base_model.{i}."
        bases.append({k[len(prefix):]: str(v) for k, v in meta.items() if k.startswith(prefix)})
    arch = str(meta.get("general.architecture", ""))
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = int(meta.get(f"{arch}.vocab_size", 0) or (len(tokens.data) if tokens is not None else 0))
    return GGUFInfo(path=path, architecture=arch, name=str(meta.get("general.name", path.stem)),
                    file_type=file_type_name(meta.get("general.file_type")), metadata=meta, tensors=tensors,
                    base_models=bases, vocab_size=vocab)
