"""A ready generative task for Hugging Face `transformers` language models (causal or seq2seq).

Config: `task.entry: cnc.evaluation.hf_task:HFTask` with options naming the base model directory
(`model_dir`, as written by `save_pretrained`), a JSON/JSONL file of instances (`data`), a prompt
template and generation settings (docs/hugging-face.md). Each model's checkpoint is either a model
directory of its own, or a `.safetensors` state dict of a weight-only variant (pruned, quantized)
that is loaded into the base directory's architecture. A model directory may be a quantized
checkpoint (docs/compressed-tensors.md): compressed-tensors is decompressed on the CPU at load
(activations quantized in the forward where the scheme says so);
GPTQ / AWQ need kernels this machine lacks and raise `ModelNotRunnable`. A `.gguf` checkpoint runs
on llama.cpp's own kernels when llama-cpp-python is installed (cnc.evaluation.llama_cpp_backend),
else through transformers on its dequantized weights. Weights are read with safetensors only,
never by unpickling; nothing is downloaded (`local_files_only`). `transformers` is imported when a
task first loads a model or tokenizer, so the rest of the app (and the web server, which only
shows prompts) never needs it.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import inspect as pyinspect
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from cnc.evaluation import llama_cpp_backend
from cnc.evaluation.gguf_runtime import FLOAT, uses_llama_cpp
from cnc.evaluation.llama_cpp_backend import LlamaCppModel
from cnc.evaluation.prompt_file import PromptSet, load_prompt_set
from cnc.experiment.entry_points import load_entry_point
from cnc.experiment.errors import ModelNotRunnable, TaskError
from cnc.experiment.gguf_file import is_gguf, read_gguf
from cnc.experiment.hf_quantization import HFQuantization, read_quantization

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
BUILTIN_SCORERS = ("rouge_l", "chrf")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise TaskError("the Hugging Face task needs transformers: pip install -r requirements-hf.txt") from None
    transformers.utils.logging.disable_progress_bar()  # precompute shows its own progress
    return transformers


class HFTask:
    """Task protocol (generative) for a transformers causal or seq2seq LM and a local data file."""

    kind = "generative"

    def __init__(self, model_dir: str, data: str, prompt_template: str | None = None,
                 architecture: str = "auto", tokenizer: str | None = None, max_new_tokens: int = 32,
                 stop: Sequence[str] = (), batch_size: int | None = None, dtype: str = "float32",
                 answer_prefix: str | None = None, max_prompt_tokens: int | None = None,
                 attributes: list[str] | None = None, scorers: list | dict | None = None,
                 limit: int | None = None) -> None:
        self.model_dir = _existing_dir(model_dir, "model_dir")
        self.tokenizer_dir = _existing_dir(tokenizer, "tokenizer") if tokenizer else self.model_dir
        if dtype not in (*DTYPES, "auto"):
            raise TaskError(f"task option dtype={dtype!r}: use one of {', '.join(DTYPES)} or auto.")
        if architecture not in ("auto", "causal", "seq2seq"):
            raise TaskError(f"task option architecture={architecture!r}: use auto, causal or seq2seq.")
        if (batch_size is not None and int(batch_size) < 1) or int(max_new_tokens) < 1:
            raise TaskError("task options batch_size and max_new_tokens must be at least 1.")
        self.architecture, self.dtype_name, self._answer_prefix = architecture, dtype, answer_prefix
        self.batch_size = int(batch_size) if batch_size else None  # None: as precompute hands them over
        self.max_prompt_tokens = max_prompt_tokens
        self.generation = {"max_new_tokens": int(max_new_tokens), "stop": [str(s) for s in stop]}
        self.scorers = _scorers(scorers)
        self.data: PromptSet = load_prompt_set(data, prompt_template, attributes, limit)

    # -- transformers, config and tokenizer: loaded on first use (the web server, which only
    #    renders prompts, never imports transformers)

    @functools.cached_property
    def _tf(self) -> Any:
        return _transformers()

    @functools.cached_property
    def config(self) -> Any:
        return self._tf.AutoConfig.from_pretrained(self.model_dir, local_files_only=True, trust_remote_code=False)

    @functools.cached_property
    def seq2seq(self) -> bool:
        if self.architecture != "auto":
            return self.architecture == "seq2seq"
        return bool(getattr(self.config, "is_encoder_decoder", False))

    @property
    def dtype(self) -> torch.dtype:
        return self.config.dtype if self.dtype_name == "auto" else DTYPES[self.dtype_name]

    @property
    def answer_prefix(self) -> str:
        return self._answer_prefix if self._answer_prefix is not None else ("" if self.seq2seq else " ")

    @functools.cached_property
    def tokenizer(self) -> Any:
        tok = self._tf.AutoTokenizer.from_pretrained(self.tokenizer_dir, local_files_only=True, trust_remote_code=False)
        if tok.pad_token_id is None:  # GPT-2 style tokenizers have none: pad with EOS
            tok.pad_token = tok.eos_token or tok.unk_token
        return tok

    # -- models

    @property
    def model_class(self) -> type:
        mapping = (self._tf.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING if self.seq2seq
                   else self._tf.MODEL_FOR_CAUSAL_LM_MAPPING)
        try:
            return mapping[type(self.config)]
        except KeyError:
            kind = "seq2seq" if self.seq2seq else "causal"
            raise TaskError(f"{self.model_dir}: a {type(self.config).__name__} is not a {kind} language model "
                            "transformers knows; set task option 'architecture' or use another model.") from None

    def load_model(self, checkpoint: str) -> torch.nn.Module:
        """A model directory (config.json + *.safetensors) or a `.safetensors` state dict of the
        base architecture; in eval mode on the CPU (precompute moves it to its device)."""
        path = Path(checkpoint).expanduser()
        opts = {"dtype": self.dtype, "use_safetensors": True, "local_files_only": True, "trust_remote_code": False}
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise TaskError(f"{path}: not a model directory (no config.json); save models with "
                                "model.save_pretrained(dir) or give a .safetensors weights file.")
            if not any(path.glob("*.safetensors")):
                raise TaskError(f"{path}: no *.safetensors weights (only safetensors are read, never pickles); "
                                "re-save with model.save_pretrained(dir).")
            quant = read_quantization(path)
            if quant is not None:
                opts.update(self._quantized_options(path, quant))
            config = self._tf.AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
            with warnings.catch_warnings():  # "the model's quantization_config will be used": as intended
                warnings.filterwarnings("ignore", message=".*already has a `quantization_config`")
                model = self.model_class.from_pretrained(path, config=config, **opts)
            if quant is not None and _quantizes_activations(quant):
                _decompress_keeping_activation_quantization(model)
            return model.eval()
        if path.is_file() and is_gguf(path):
            return self._gguf_model(path, opts)
        if path.suffix != ".safetensors" or not path.is_file():
            raise TaskError(f"{path}: checkpoint must be a model directory or an existing .safetensors "
                            "weights file (a weight-only variant of task option model_dir), or a .gguf file.")
        return self._weights_variant(path, opts)

    def _quantized_options(self, path: Path, quant: HFQuantization) -> dict:
        """from_pretrained options for a quantized checkpoint. compressed-tensors weight-only
        schemes are dequantized at load (transformers 5.23's compressed route cannot load asymmetric
        pack-quantized checkpoints); schemes that quantize activations (W8A8, FP8) keep that
        route, whose forward quantizes the activations as the method does."""
        if quant.method == "compressed-tensors":
            if importlib.util.find_spec("compressed_tensors") is None:
                raise ModelNotRunnable(f"{path}: a {quant.describe()} checkpoint needs the compressed-tensors "
                                       "package to run: pip install -r requirements-quant.txt.")
            dequantize = not _quantizes_activations(quant)
            return {"quantization_config": self._tf.CompressedTensorsConfig(dequantize=dequantize)}
        needs = ("gptqmodel", "optimum") if quant.method == "gptq" else ("gptqmodel",)
        missing = [name for name in needs if importlib.util.find_spec(name) is None]
        if missing:
            raise ModelNotRunnable(
                f"{path}: {quant.describe()} cannot run here: transformers runs {quant.method.upper()} checkpoints "
                f"through {' and '.join(needs)} (gptqmodel builds its kernels for CUDA GPUs), and "
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed. Its Layers are read "
                "from its files (weights dequantized by cnc); its Behaviors need a machine with those packages.")
        return {}

    def _gguf_model(self, path: Path, opts: dict) -> torch.nn.Module | LlamaCppModel:
        """A GGUF file through llama.cpp's own kernels when llama-cpp-python is installed
        (cnc.evaluation.gguf_runtime), else through transformers (`gguf_file=`): its weights
        dequantized, float kernels. The task's tokenizer (the base's) encodes every prompt, so each
        model gets the same token ids."""
        vocab = read_gguf(path).vocab_size
        if vocab and vocab != self.config.vocab_size:
            raise TaskError(f"{path}: its vocabulary has {vocab} tokens, the base {self.model_dir} has "
                            f"{self.config.vocab_size}; the same token ids cannot be fed to both, so its outputs, "
                            "NLL and KL are not comparable. Its Layers still are in a folder without prompts.")
        if uses_llama_cpp(path, strict=True):
            if self.seq2seq:
                raise TaskError(f"{path}: llama.cpp runs causal models; this task's base is seq2seq.")
            eos = self.config.eos_token_id
            eos_ids = {*(eos if isinstance(eos, (list, tuple)) else [eos]), self.tokenizer.eos_token_id} - {None}
            return LlamaCppModel(path, frozenset(int(e) for e in eos_ids), int(self.config.vocab_size))
        opts = {k: v for k, v in opts.items() if k != "use_safetensors"}
        try:
            with _quiet(self._tf):
                model = self.model_class.from_pretrained(path.parent, gguf_file=path.name, **opts)
        except (ValueError, OSError, RuntimeError) as exc:
            raise TaskError(f"{path}: transformers cannot load this GGUF ({exc}).") from None
        model.cnc_runtime = FLOAT
        return model.eval()

    def _weights_variant(self, path: Path, opts: dict) -> torch.nn.Module:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise TaskError(f"{path}: cannot read safetensors weights ({exc}).") from None
        opts = {k: v for k, v in opts.items() if k != "use_safetensors"}
        try:
            with _quiet(self._tf):  # transformers' own load report would duplicate the error below
                model, info = self.model_class.from_pretrained(None, config=self.config, state_dict=state,
                                                               output_loading_info=True, **opts)
        except RuntimeError as exc:
            raise TaskError(f"{path}: weights do not fit the architecture of {self.model_dir} ({exc}).") from None
        missing, unexpected = sorted(info["missing_keys"]), sorted(info["unexpected_keys"])
        if missing or unexpected:
            raise TaskError(f"{path}: weights do not match {self.model_dir}: missing {missing[:5]}, "
                            f"unexpected {unexpected[:5]}. Save the variant with cnc.evaluation.hf_task."
                            "save_weights(model, path) from a model built from that directory.")
        return model.eval()

    # -- evaluation data (cnc.task protocol)

    def eval_data(self) -> tuple[list[str], list[list[str]]]:
        return list(self.data.prompts), [list(r) for r in self.data.references]

    def attributes(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.data.attributes.items()}

    def render_instance(self, index: int) -> dict:
        return {"kind": "text", "text": self.data.prompts[index]}

    # -- tokens

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """Prompt token ids with the tokenizer's special tokens, cut from the left to max_prompt_tokens."""
        ids = self.tokenizer(list(prompts), add_special_tokens=True)["input_ids"]
        if self.max_prompt_tokens:
            ids = [row[-int(self.max_prompt_tokens):] for row in ids]
        return ids

    def encode_references(self, references: Sequence[str]) -> list[list[int]]:
        return self.tokenizer([self.answer_prefix + r for r in references], add_special_tokens=False)["input_ids"]

    def _pad(self, rows: list[list[int]], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
        width = max((len(r) for r in rows), default=0)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                cols = slice(width - len(row), width) if left else slice(0, len(row))
                ids[i, cols] = torch.tensor(row, dtype=torch.long)
                mask[i, cols] = 1
        return ids, mask

    # -- generation and teacher forcing (cnc.task generative protocol)

    def generate(self, model: torch.nn.Module, prompts: list[str], max_new_tokens: int) -> list[str]:
        """Greedy continuations (text after the prompt), in batches of task option batch_size (if set);
        causal prompts are left-padded so every row continues from its last token."""
        if isinstance(model, LlamaCppModel):
            new = llama_cpp_backend.generate(model, self.encode_prompts(prompts), max_new_tokens)
            return self.tokenizer.batch_decode(new, skip_special_tokens=True)
        texts: list[str] = []
        for chunk in self._chunks(len(prompts)):
            texts.extend(self._generate(model, self.encode_prompts(prompts[chunk]), max_new_tokens)[0])
        return texts

    def generate_and_reference(self, model: torch.nn.Module, prompts: list[str], references: list[str],
                               max_new_tokens: int) -> tuple[list[str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """`generate` and `reference_logits` sharing the prompt's work (precompute prefers this when a
        task has it): a causal model teacher-forces the reference on the keys and values generation
        left in its cache, cut back to the prompt; a seq2seq model encodes each prompt once."""
        if isinstance(model, LlamaCppModel):
            new, forced = llama_cpp_backend.generate_and_reference(
                model, self.encode_prompts(prompts), self.encode_references(references), max_new_tokens)
            return self.tokenizer.batch_decode(new, skip_special_tokens=True), forced
        texts, parts = [], []
        for chunk in self._chunks(len(prompts)):
            prompt_ids, ref_ids = self.encode_prompts(prompts[chunk]), self.encode_references(references[chunk])
            new, state = self._generate(model, prompt_ids, max_new_tokens, keep_state=True)
            texts.extend(new)
            if self.seq2seq:
                parts.append(self._seq2seq_logits(model, prompt_ids, ref_ids, _device_of(model), state))
            else:
                parts.append(self._cached_causal_logits(model, state, ref_ids)
                             or self._causal_logits(model, prompt_ids, ref_ids, _device_of(model)))
        return texts, _concat(parts)

    def _chunks(self, n: int) -> list[slice]:
        step = self.batch_size or max(1, n)
        return [slice(start, start + step) for start in range(0, n, step)]

    def _generate(self, model: torch.nn.Module, prompt_ids: list[list[int]], max_new_tokens: int,
                  keep_state: bool = False) -> tuple[list[str], Any]:
        """Greedy texts of one batch and, with `keep_state`, what teacher forcing can reuse: the
        causal model's cache with the padded prompt, or the seq2seq model's encoder outputs."""
        device = _device_of(model)
        ids, mask = self._pad(prompt_ids, left=not self.seq2seq)
        ids, mask = ids.to(device), mask.to(device)
        settings = {"max_new_tokens": int(max_new_tokens), "do_sample": False, "num_beams": 1,
                    "pad_token_id": self.tokenizer.pad_token_id, "return_dict_in_generate": True}
        inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if keep_state and self.seq2seq:
            inputs = {"encoder_outputs": model.get_encoder()(input_ids=ids, attention_mask=mask),
                      "attention_mask": mask}
        out = model.generate(**inputs, generation_config=_greedy(model, settings))
        new = out.sequences if self.seq2seq else out.sequences[:, ids.shape[1]:]
        texts = self.tokenizer.batch_decode(new.cpu(), skip_special_tokens=True)
        if not keep_state:
            return texts, None
        if self.seq2seq:
            return texts, inputs["encoder_outputs"]
        return texts, (out.past_key_values, ids, mask)

    def reference_logits(self, model: torch.nn.Module, prompts: list[str],
                         references: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced logits float32 [B, T, V] at the positions predicting each reference token,
        the tokens long [B, T] and a mask bool [B, T]; causal: one pass over prompt + reference,
        seq2seq: the reference as decoder labels."""
        if isinstance(model, LlamaCppModel):
            return llama_cpp_backend.reference_logits(model, self.encode_prompts(prompts), self.encode_references(references))
        device = _device_of(model)
        step = self._seq2seq_logits if self.seq2seq else self._causal_logits
        return _concat([step(model, self.encode_prompts(prompts[chunk]), self.encode_references(references[chunk]),
                             device) for chunk in self._chunks(len(prompts))])

    def _causal_logits(self, model, prompt_ids, ref_ids, device):
        width = max((len(r) for r in ref_ids), default=0)
        ids, mask = self._pad([p + r for p, r in zip(prompt_ids, ref_ids)], left=True)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        kwargs = {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": positions.to(device)}
        if "logits_to_keep" in pyinspect.signature(model.forward).parameters:
            kwargs["logits_to_keep"] = width + 1  # the vocabulary projection only where it is needed
        logits = model(**kwargs).logits[:, -(width + 1):, :]
        # Left padding aligns every sequence's end: row i's n reference tokens are predicted by the
        # n positions before its last one, i.e. window positions width-n ... width-1.
        lengths = torch.tensor([len(r) for r in ref_ids])
        j = torch.arange(width)
        index = (width - lengths[:, None] + j[None, :]).clamp(min=0, max=width)
        out = logits.gather(1, index.to(device)[:, :, None].expand(-1, -1, logits.shape[-1]))
        targets, target_mask = self._pad(ref_ids, left=False)
        return out.float(), targets.to(device), target_mask.bool().to(device)

    def _cached_causal_logits(self, model: torch.nn.Module, state: Any, ref_ids: list[list[int]]):
        """Teacher-forced logits from generation's cache cut back to all but the prompt's last
        token, which is fed again with the reference (None when the cache cannot be cut)."""
        cache, ids, mask = state
        targets, target_mask = self._pad(ref_ids, left=False)
        width, prompt = targets.shape[1], ids.shape[1]
        if not width or prompt < 2 or not _croppable(cache):
            return None
        cache.crop(prompt - 1 - cache.get_seq_length())
        device = ids.device
        targets, target_mask = targets.to(device), target_mask.to(device)
        # row i: [last prompt token, reference tokens but the last], right-padded; its outputs
        # predict the reference tokens one by one
        step_ids = torch.cat([ids[:, -1:], targets[:, :width - 1]], 1)
        full = torch.cat([mask, target_mask[:, :width - 1]], 1)
        positions = (full.cumsum(-1) - 1).clamp(min=0)[:, -width:]
        logits = model(input_ids=step_ids, attention_mask=full, position_ids=positions, past_key_values=cache,
                       use_cache=True).logits
        return logits.float(), targets, target_mask.bool()

    def _seq2seq_logits(self, model, prompt_ids, ref_ids, device, encoder_outputs: Any = None):
        ids, mask = self._pad(prompt_ids, left=False)
        targets, target_mask = self._pad(ref_ids, left=False)
        labels = targets.masked_fill(target_mask == 0, -100)
        inputs = {"input_ids": ids.to(device)} if encoder_outputs is None else {"encoder_outputs": encoder_outputs}
        logits = model(**inputs, attention_mask=mask.to(device), labels=labels.to(device)).logits
        return logits.float(), targets.to(device), target_mask.bool().to(device)


def _quantizes_activations(quant: HFQuantization) -> bool:
    return quant.method == "compressed-tensors" and any(g.weights.activation_bits for g in quant.groups)


def _decompress_keeping_activation_quantization(model: torch.nn.Module) -> None:
    """Weights decompressed now rather than in the first forward, and the quantization parameters
    (scales, zero points) turned into buffers: the forward still quantizes activations with them,
    and the model's parameters are the base's (what Layers compares)."""
    model.hf_quantizer.compressor.decompress_model(model)
    for module in model.modules():
        if hasattr(module, "quantization_scheme"):
            for name in [n for n in module._parameters if n not in ("weight", "bias")]:
                module.register_buffer(name, module._parameters.pop(name).data)


def _croppable(cache: Any) -> bool:
    """A plain full-attention dynamic cache, which `crop` cuts exactly (sliding-window, static or
    quantized caches are left to a fresh teacher-forced pass)."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    return type(cache) is DynamicCache and all(type(layer) is DynamicLayer for layer in cache.layers)


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Store a weight-only variant as a safetensors state dict (shared tensors once), loadable as a
    checkpoint of an HFTask whose model_dir holds the base's config and tokenizer."""
    from safetensors.torch import save_model

    save_model(model, str(path), metadata={"format": "pt"})


def _existing_dir(value: str, option: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise TaskError(f"task option {option}: {path} is not a directory (relative paths start at "
                        f"{Path.cwd()}); point it at a folder written by save_pretrained.")
    return path


@contextlib.contextmanager
def _quiet(tf: Any):
    level = tf.utils.logging.get_verbosity()
    tf.utils.logging.set_verbosity_error()
    try:
        yield
    finally:
        tf.utils.logging.set_verbosity(level)


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _greedy(model: torch.nn.Module, settings: dict) -> Any:
    """The model's generation config made greedy (sampling settings a checkpoint ships are dropped)."""
    config = copy.deepcopy(model.generation_config)
    for key in ("temperature", "top_p", "top_k", "typical_p", "min_p"):
        if hasattr(config, key):
            setattr(config, key, None)
    config.update(**settings)
    return config


def _concat(parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    if len(parts) == 1:  # one batch (the usual case): no copy of the vocabulary-sized logits
        return parts[0]
    width = max(p[1].shape[1] for p in parts)
    logits, targets, masks = [], [], []
    for lg, tg, mk in parts:
        extra = width - tg.shape[1]
        logits.append(torch.nn.functional.pad(lg, (0, 0, 0, extra)))
        targets.append(torch.nn.functional.pad(tg, (0, extra)))
        masks.append(torch.nn.functional.pad(mk, (0, extra)))
    return torch.cat(logits), torch.cat(targets), torch.cat(masks)


def _scorers(spec: list | dict | None) -> dict[str, str | Callable[[str, list[str]], float]]:
    """Task option scorers: builtin names (rouge_l, chrf) or {name: builtin or 'module:function'}."""
    if not spec:
        return {}
    items = {s: s for s in spec} if isinstance(spec, list) else dict(spec)
    out: dict[str, Any] = {}
    for name, what in items.items():
        if what in BUILTIN_SCORERS:
            out[str(name)] = what
        elif isinstance(what, str) and ":" in what:
            out[str(name)] = load_entry_point(what)
        else:
            raise TaskError(f"task option scorers: {name}={what!r}; use {' or '.join(BUILTIN_SCORERS)} "
                            "or 'package.module:function' taking (prediction, references).")
    return out
