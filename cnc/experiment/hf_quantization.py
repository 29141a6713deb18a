"""What a quantized Hugging Face checkpoint's `config.json` says: its `quantization_config`
(compressed-tensors, GPTQ or AWQ) read into weight schemes, which layers each one covers and which
the recipe left in float. Pure JSON reading: no torch, no transformers; a malformed block raises a
`TaskError` naming the file and the field."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnc.experiment.errors import TaskError

METHODS = ("compressed-tensors", "gptq", "awq")
# compressed-tensors formats whose weights cnc dequantizes (others are named in an error)
CT_FORMATS = ("pack-quantized", "int-quantized", "naive-quantized", "float-quantized", "dense")
STRATEGIES = ("tensor", "channel", "group", "block")


@dataclass(frozen=True)
class WeightScheme:
    """How one group of weights is quantized."""

    bits: int
    group_size: int | None  # None: not grouped (per channel / per tensor / block)
    symmetric: bool
    strategy: str  # tensor, channel, group, block
    type: str = "int"  # int or float
    block: tuple[int, int] | None = None
    actorder: str | None = None
    activation_bits: int | None = None  # None: activations stay in float (weight-only)

    @property
    def storage(self) -> str:
        """The per-layer storage name: "int4 g128 sym", "int8 channel sym", "float8 block 128x128"."""
        where = {"group": f"g{self.group_size}", "block": f"block {self.block[0]}x{self.block[1]}" if self.block
                 else "block"}.get(self.strategy, self.strategy)
        return f"{self.type}{self.bits} {where} {'sym' if self.symmetric else 'asym'}"

    def as_dict(self) -> dict:
        return {"bits": self.bits, "group_size": self.group_size, "symmetric": self.symmetric,
                "strategy": self.strategy, "type": self.type, "actorder": self.actorder}


@dataclass(frozen=True)
class ConfigGroup:
    """A compressed-tensors config group: the modules it targets and their weight scheme."""

    name: str
    targets: tuple[str, ...]
    weights: WeightScheme
    format: str


@dataclass(frozen=True)
class HFQuantization:
    """A checkpoint's quantization: the method, its weight scheme(s), the layers left unquantized."""

    source: Path  # the config.json it came from
    method: str  # compressed-tensors, gptq, awq
    groups: tuple[ConfigGroup, ...]
    ignore: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)  # method-specific: desc_act, checkpoint_format, version

    def describe(self) -> str:
        """The operation as a person names it: "compressed-tensors W4A16, group 128", "GPTQ 4-bit g128"."""
        if self.method == "compressed-tensors":
            return "compressed-tensors " + " + ".join(_ct_name(g.weights) for g in self.groups)
        w = self.groups[0].weights
        size = f"g{w.group_size}" if w.group_size else "per channel"
        return f"{self.method.upper()} {w.bits}-bit {size}"

    def scheme_for(self, module: str) -> ConfigGroup | None:
        """The group whose targets name `module` (exact name, then `re:` pattern, then a class name
        such as "Linear", which a reader without the model can only take to mean any layer)."""
        for rank in (_exact, _pattern, _class_name):
            for group in self.groups:
                if any(rank(t, module) for t in group.targets):
                    return group
        return None

    def is_ignored(self, module: str) -> bool:
        """Left in float by the recipe's `ignore` (compressed-tensors), `modules_to_not_convert`
        (AWQ) or a `dynamic` negative rule (GPTQ)."""
        return any(_exact(t, module) or _pattern(t, module) for t in self.ignore)


def read_quantization(model_dir: str | Path) -> HFQuantization | None:
    """The quantization of a model directory, or None when its config.json has no quantization_config
    (float weights) or the directory has no config.json."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TaskError(f"{path}: not readable JSON ({exc}); re-save the model with save_pretrained.") from None
    block = config.get("quantization_config") if isinstance(config, dict) else None
    if block is None:
        return None
    return parse_quantization_config(block, path)


def parse_quantization_config(block: Any, source: Path) -> HFQuantization:
    """`config.json`'s quantization_config block read into an `HFQuantization`."""
    if not isinstance(block, dict):
        raise _bad(source, "", block, "an object with quant_method and its scheme")
    method = str(block.get("quant_method", "")).lower().replace("_", "-")
    if method == "compressed-tensors":
        return _compressed_tensors(block, source)
    if method in ("gptq", "awq"):
        return _gptq_awq(method, block, source)
    raise _bad(source, "quant_method", block.get("quant_method"), f"one of {', '.join(METHODS)} "
               "(other methods are not read: bitsandbytes, hqq, fp8 ... quantize at load time, not in the file)")


def _compressed_tensors(block: dict, source: Path) -> HFQuantization:
    default_format = block.get("format") or "dense"
    groups_block = block.get("config_groups")
    if not isinstance(groups_block, dict) or not groups_block:
        raise _bad(source, "config_groups", groups_block, "an object of named groups, each with targets and weights")
    sparsity = block.get("sparsity_config") or {}
    if isinstance(sparsity, dict) and sparsity.get("format") not in (None, "dense"):
        raise _bad(source, "sparsity_config.format", sparsity.get("format"),
                   "dense (sparse compressed-tensors checkpoints are not read)")
    groups = []
    for name, group in groups_block.items():
        where = f"config_groups.{name}"
        if not isinstance(group, dict):
            raise _bad(source, where, group, "an object with targets and weights")
        targets = group.get("targets")
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
            raise _bad(source, f"{where}.targets", targets, 'a list of module names, "re:" patterns or classes')
        weights = group.get("weights")
        if not isinstance(weights, dict):
            raise _bad(source, f"{where}.weights", weights, "an object with num_bits, strategy, symmetric")
        fmt = group.get("format") or default_format
        if fmt not in CT_FORMATS:
            raise _bad(source, f"{where}.format", fmt, f"one of {', '.join(CT_FORMATS)} (cnc does not dequantize "
                       "this format yet)")
        acts = group.get("input_activations")
        act_bits = _int(source, f"{where}.input_activations.num_bits", acts.get("num_bits"), 1, 32) \
            if isinstance(acts, dict) else None
        groups.append(ConfigGroup(name, tuple(targets), _ct_weights(weights, source, f"{where}.weights", act_bits),
                                  fmt))
    ignore = block.get("ignore") or []
    if not isinstance(ignore, list) or not all(isinstance(t, str) for t in ignore):
        raise _bad(source, "ignore", ignore, "a list of module names or \"re:\" patterns")
    status = block.get("quantization_status")
    if status not in (None, "compressed", "frozen"):
        raise _bad(source, "quantization_status", status, "compressed or frozen (a finished checkpoint)")
    return HFQuantization(source, "compressed-tensors", tuple(groups), tuple(ignore),
                          {"format": default_format, "status": status})


def _ct_weights(weights: dict, source: Path, where: str, act_bits: int | None) -> WeightScheme:
    kind = weights.get("type", "int")
    if kind not in ("int", "float"):
        raise _bad(source, f"{where}.type", kind, "int or float")
    bits = _int(source, f"{where}.num_bits", weights.get("num_bits"), 1, 16)
    strategy = weights.get("strategy") or "tensor"
    if strategy not in STRATEGIES:
        raise _bad(source, f"{where}.strategy", strategy, f"one of {', '.join(STRATEGIES)} (cnc does not "
                   "dequantize tensor_group / token strategies yet)")
    group_size = None
    if strategy == "group":
        group_size = _int(source, f"{where}.group_size", weights.get("group_size"), 1, 1 << 20)
    block = None
    if strategy == "block":
        shape = weights.get("block_structure")
        if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)):
            raise _bad(source, f"{where}.block_structure", shape, "[rows, columns] of a block, e.g. [128, 128]")
        block = (shape[0], shape[1])
    symmetric = weights.get("symmetric", True)
    if not isinstance(symmetric, bool):
        raise _bad(source, f"{where}.symmetric", symmetric, "true or false")
    actorder = weights.get("actorder")
    return WeightScheme(bits, group_size, symmetric, strategy, kind, block,
                        actorder if isinstance(actorder, str) else None, act_bits)


def _gptq_awq(method: str, block: dict, source: Path) -> HFQuantization:
    bits = _int(source, "bits", block.get("bits", block.get("w_bit")), 1, 16)
    raw_group = block.get("group_size", block.get("q_group_size", 128))
    group_size = _int(source, "group_size", raw_group, -1, 1 << 20)
    if group_size == 0:
        raise _bad(source, "group_size", raw_group, "a positive number of columns per group, or -1 (per channel)")
    if method == "gptq":
        symmetric = block.get("sym", True)
        if not isinstance(symmetric, bool):
            raise _bad(source, "sym", symmetric, "true or false")
        extra = {"desc_act": bool(block.get("desc_act", False)),
                 "checkpoint_format": str(block.get("checkpoint_format", "gptq"))}
        dynamic = block.get("dynamic") or {}
        overrides = [str(k) for k in dynamic if not str(k).startswith("-")] if isinstance(dynamic, dict) else [dynamic]
        if overrides:
            raise _bad(source, "dynamic", overrides[0], 'only "-:pattern" rules that skip modules (cnc does not '
                       "read per-module bit widths)")
        ignore = [f"re:{str(k)[1:].removeprefix(':')}" for k in dynamic]
    else:
        zero_point = block.get("zero_point", True)
        if not isinstance(zero_point, bool):
            raise _bad(source, "zero_point", zero_point, "true or false")
        symmetric = not zero_point
        extra = {"version": str(block.get("version", "gemm")).lower()}
        ignore = block.get("modules_to_not_convert") or []
        if not isinstance(ignore, list) or not all(isinstance(t, str) for t in ignore):
            raise _bad(source, "modules_to_not_convert", ignore, "a list of module names")
    scheme = WeightScheme(bits, group_size if group_size > 0 else None, symmetric,
                          "group" if group_size > 0 else "channel",
                          actorder="dynamic" if extra.get("desc_act") else None)
    # AWQ names modules to skip by a name part ("lm_head", "vision_tower"), as transformers matches them
    patterns = tuple(ignore) if method == "gptq" else tuple(f"re:(.*\\.)?{re.escape(n)}(\\..*)?$" for n in ignore)
    return HFQuantization(source, method, (ConfigGroup("weights", ("Linear",), scheme, method),), patterns, extra)


def _ct_name(w: WeightScheme) -> str:
    name = f"W{w.bits}A{w.activation_bits or 16}"
    if w.type == "float":
        name = f"FP{w.bits} {name}"
    if not w.symmetric:
        name += " asym"
    detail = {"group": f"group {w.group_size}", "channel": "per channel", "tensor": "per tensor",
              "block": f"block {w.block[0]}x{w.block[1]}" if w.block else "block"}[w.strategy]
    return f"{name}, {detail}"


def _exact(target: str, module: str) -> bool:
    return target == module


def _pattern(target: str, module: str) -> bool:
    return target.startswith("re:") and re.match(target[3:], module) is not None


def _class_name(target: str, _module: str) -> bool:
    return not target.startswith("re:") and "." not in target and target[:1].isupper()


def _int(source: Path, where: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(source, where, value, f"an integer from {low} to {high}")
    return value


def _bad(source: Path, where: str, value: Any, expected: str) -> TaskError:
    field_name = "quantization_config" + (f".{where}" if where else "")
    return TaskError(f"{source}: {field_name} is {json.dumps(value) if _jsonable(value) else repr(value)}; "
                     f"expected {expected}.")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
