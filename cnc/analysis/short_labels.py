"""Short labels that still tell side-by-side models apart (the map's node labels, Pareto chips).

Cutting a label at its end cuts what differs: siblings are usually the same operation with another
parameter ("global magnitude prune 0.1" / "… 0.3") or the same recipe with another last step
("Magnitude 50% → FT → int8 static" / "… dynamic"), so both read "global magnitude prun…". Here the
words every label of the group shares are shortened first, then a prefix shared by the whole group
is elided, then the middle of a label is cut, never the words that differ; labels still equal (two
models with one tag) fall back to their ids. The full text belongs in a tooltip.

Pure Python, no Dash imports.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Mapping

from cnc.analysis.recipe_text import node_label
from cnc.experiment.forest import Experiment

ELLIPSIS = "…"
# Words of compression recipes with a short form people use; any other long shared word keeps its first letters.
SHORT_WORDS = {"magnitude": "mag.", "layer-wise": "layer", "layerwise": "layer", "fine-tune": "FT",
               "finetune": "FT", "fine-tuned": "FT", "pruning": "prune", "quantize": "quant.",
               "quantization": "quant.", "quantized": "quant.", "selective": "sel.", "sparsity": "sp.",
               "calibrate": "calib.", "calibration": "calib.", "structured": "struct.", "unstructured": "unstr.",
               "distillation": "distill.", "recalibration": "recal.", "recalibrate": "recal."}
_PLAIN_WORD = re.compile(r"^[A-Za-z][A-Za-z-]*[,;:]?$")
_IDENTIFIER = re.compile(r"^[a-z]+(?:_[a-z0-9]+)+[,;:]?$")  # learning_rate, group_size


def _abbreviate(word: str) -> str:
    """A word's short form: "magnitude" -> "mag.", "attention," -> "atte.,", "learning_rate" ->
    "lr"; numbers and short words kept."""
    if _IDENTIFIER.match(word):
        tail = word[-1] if word[-1] in ",;:" else ""
        return "".join(part[0] for part in word.rstrip(",;:").split("_")) + tail
    if not _PLAIN_WORD.match(word):
        return word
    core, tail = (word[:-1], word[-1]) if word[-1] in ",;:" else (word, "")
    short = SHORT_WORDS.get(core.lower())
    if short is None:
        short = core if len(core) <= 6 else core[:4] + "."
    elif core[:1].isupper() and short[:1].islower():
        short = short[:1].upper() + short[1:]
    return short + tail


def _middle_cut(words: list[str], keep_from: int, width: int) -> str:
    """The words from `keep_from` on kept whole (what differs), the ones before cut to fit: "layer-wise m… 0.1"."""
    tail = " ".join(words[keep_from:])
    head = " ".join(words[:keep_from])
    if not head:
        text = tail
    else:
        room = width - len(tail) - 1
        if room <= 0:
            text = ELLIPSIS + tail
        elif len(head) + 1 + len(tail) <= width:
            text = head + " " + tail
        else:
            text = head[:room].rstrip() + ELLIPSIS + tail
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS


ARROWS = ("→", "->")


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _shared(words: list[str], others: list[list[str]]) -> set[str]:
    """The words of a label that do not tell it from its nearest neighbours (the other labels with
    which it has the most words in common): "magnitude" and "prune" of "global magnitude prune
    0.1" beside "global magnitude prune 0.3" and "layer-wise magnitude prune 0.1"."""
    mine = set(words) - set(ARROWS)
    if not others:
        return set()
    overlaps = [len(mine & set(o)) for o in others]
    best = max(overlaps)
    if best == 0:
        return set()
    nearest = [set(o) for o, n in zip(others, overlaps) if n == best]
    return {w for w in mine if all(w in o for o in nearest)}


def _fit(words: list[str], shared: set[str], prefix: int, width: int) -> str:
    """The first of ever shorter forms that fits `width` (see the module's docstring)."""
    def abbreviated(ws: list[str], which: set[str] | None = None) -> list[str]:
        return [_abbreviate(w) if which is None or w in which else w for w in ws]

    candidates = [abbreviated(words, shared)]
    arrow = max((i for i in range(1, prefix + 1) if words[i - 1] in ARROWS or
                 (i < len(words) and words[i] in ARROWS)), default=0)
    if arrow:  # a recipe shared with the parent or every sibling: "…→ int8 static"
        rest = words[arrow:]
        candidates.append([ELLIPSIS + "→", *(rest[1:] if rest[0] in ARROWS else rest)])
    candidates.append(abbreviated(words))
    # shared words dropped, but not a parameter's name before its value ("bits 4, group_size 128")
    kept = _tidy([w for i, w in enumerate(words) if w not in shared or _names_value(words, i) or _value(w)])
    candidates += [abbreviated(kept, shared), abbreviated(kept)]
    for form in candidates:
        if len(" ".join(form)) <= width:
            return " ".join(form)
    last = candidates[-1]  # cut in the middle: the parameters, else the last words that differ, stay whole
    named = [i for i in range(len(kept)) if _names_value(kept, i)]
    differ = [i for i, w in enumerate(kept) if w not in shared and w not in ARROWS]
    start = named[0] if named else differ[-1] if differ else len(last) - 1
    while not named and start - 1 in differ:
        start -= 1
    return _middle_cut(last, start, width)


def _tidy(words: list[str]) -> list[str]:
    """No arrow left leading, trailing or doubled where the words between were dropped."""
    out: list[str] = []
    for w in words:
        if w in ARROWS and (not out or out[-1] in ARROWS):
            continue
        out.append(w)
    while out and out[-1] in ARROWS:
        out.pop()
    return out


def _value(word: str) -> bool:
    return any(c.isdigit() for c in word)


def _names_value(words: list[str], i: int) -> bool:
    """Word i names the value that follows it ("bits" of "bits 4")."""
    return i + 1 < len(words) and _value(words[i + 1]) and not _value(words[i]) and words[i] not in ARROWS


def distinct_labels(full: Mapping[str, str], width: int, parent: str | None = None) -> dict[str, str]:
    """Labels of at most `width` characters for models shown side by side (key -> full label),
    as distinct as the full labels allow: equal full labels get the keys (the model ids) instead.
    `parent`, the label of the models' common base, counts as a neighbour too (an only child
    "Magnitude 90% → FT → int8 static" of "Magnitude 90% → FT" reads "…→ int8 static")."""
    words = {k: v.split() for k, v in full.items()}
    base = parent.split() if parent else None
    out = {}
    for key, label in full.items():
        if len(label) <= width:
            out[key] = label
            continue
        ws = words[key]
        others = [w for k, w in words.items() if k != key] + ([base] if base else [])
        shared = _shared(ws, others)
        siblings = [w for k, w in words.items() if k != key]
        prefix = min((_common_prefix(ws, o) for o in siblings), default=0) if siblings else 0
        if base:
            prefix = max(prefix, _common_prefix(ws, base))
        out[key] = _fit(ws, shared, prefix, width)
    return _ids_where_equal(out, full, width)


def _ids_where_equal(out: dict[str, str], full: Mapping[str, str], width: int) -> dict[str, str]:
    """Labels still equal become a window on the text where it first differs from the others'
    ("…pruning75_compre…"), after its start if need be ("mobilenet…pruning75_compr…"): on the full
    labels when those differ, else on the ids. The first free one is taken, so none repeats."""
    seen: dict[str, list[str]] = defaultdict(list)
    for key, text in out.items():
        seen[text].append(key)
    taken = {text for text, keys in seen.items() if len(keys) == 1}
    for keys in seen.values():
        if len(keys) > 1:
            texts = {k: full[k] for k in keys} if len({full[k] for k in keys}) == len(keys) else {k: k for k in keys}
            for k, text in texts.items():
                others = [t for j, t in texts.items() if j != k]
                label = next((c for c in _windows(text, others, width) if c not in taken), k)
                out[k] = label
                taken.add(label)
    return out


def _windows(text: str, others: list[str], width: int):
    """Ever wider-spread views of `text` within `width`: where it first differs, then its start with
    each later stretch of it."""
    if len(text) <= width:
        yield text
        return
    split = max((len(_char_prefix(text, o)) for o in others), default=0)
    for start in (max(0, min(split - width // 3, len(text) - width + 1)), 0):
        head = ELLIPSIS if start else ""
        body = text[start:]
        yield head + (body if len(body) <= width - len(head) else body[: width - len(head) - 1] + ELLIPSIS)
    for h in (width // 3, width // 5):
        room = width - h - 1
        for s in range(h + 1, len(text)):
            body = text[s:]
            yield text[:h] + ELLIPSIS + (body if len(body) <= room else body[: room - 1] + ELLIPSIS)


def _char_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def sibling_labels(experiment: Experiment, width: int) -> dict[str, str]:
    """Each model's map label (`node_label`, at most `width` characters), distinct among the models
    that share its base (the roots among the roots): siblings sit side by side on the map."""
    groups: dict[str | None, dict[str, str]] = defaultdict(dict)
    for mid, model in experiment.models.items():
        groups[model.base][mid] = node_label(model)
    out: dict[str, str] = {}
    for base, group in groups.items():
        parent = node_label(experiment.models[base]) if base in experiment.models else None
        out.update(distinct_labels(group, width, parent))
    return {mid: out[mid] for mid in experiment.models}
