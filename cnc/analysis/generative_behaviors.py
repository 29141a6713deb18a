"""Behaviors of generative models (language models) against a base, from their stored outputs.

Per model and instance, precompute stores the output text, its scores against the references
(exact match, token F1, any scorer the task names), the reference's negative log-likelihood and
token count, per-token KL divergence and top-1 agreement against the model's KL reference (the
root of its tree), and the share of repeated n-grams (docs/generative.md). `build_generative_table`
stacks these for a selection (base first) into a `GenerativeTable`, which the Behaviors view code
(behavior_view: filter, sort, histograms; behavior_cells: paging, CSV) uses like a classifier's
`InstanceTable`: same row modes, thresholds, sorts and instance filters.

Conventions
- "Right" means exact match (score ≥ 0.5: stored as 0/1). Right→wrong and wrong→right compare a
  model's exact match with the base's on the same instance; the "correct" array drives the
  instance filters ("base right, a model wrong", ...), "changed" means the output text differs.
- Scores are higher-is-better (exact match, F1, ROUGE-L, chrF). Group values of scores,
  repetition and the change rates are means over the group's instances.
- KL, top-1 agreement and NLL are token-weighted: summed over the group's reference tokens and
  divided by their number (llama.cpp's figures over a whole file); perplexity is exp(mean NLL).
- KL and top-1 agreement are measured against each model's KL reference, not the chosen base:
  their labels name the reference, and relative values subtract the base's value (0 when the
  base is the reference).
- A field a model lacks (outputs-only models have no NLL or KL) is NaN: shown as "—", never
  passing a threshold, sorted last.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from cnc.analysis.behavior_metrics import Grouping, MetricSpec, group_means, group_sums
from cnc.analysis.output_diff import changed_share, word_diff
from cnc.analysis.token_divergence import per_instance_mean
from cnc.analysis.worst_samples import Damage, right_to_wrong

EXACT = "exact_match"
SCORE_LABELS = {"exact_match": "Exact match", "f1": "F1", "rouge_l": "ROUGE-L", "chrf": "chrF"}
UNIT_SCORES = ("exact_match", "f1", "rouge_l", "chrf")  # in [0, 1] (chrF stored / 100): shown as percentages
SHORT = 160  # characters of a text in a grid cell (the instance panel and the CSV show all)


def is_generative(task: dict | None) -> bool:
    """A stored task dict of a generative task (classifier tasks have no "kind")."""
    return isinstance(task, dict) and task.get("kind") == "generative"


def score_label(name: str) -> str:
    return SCORE_LABELS.get(name, name)


def generative_specs(score_names: list[str], reference: str | None = None, has_kl: bool = True,
                     has_nll: bool = True) -> dict[str, MetricSpec]:
    """The metrics of a generative selection. `reference`: the KL reference all models share
    (None: they differ, or none is known); KL / top-1 metrics only `has_kl`, NLL ones only `has_nll`."""
    specs: dict[str, MetricSpec] = {}
    for name in score_names:
        label, unit = score_label(name), name in UNIT_SCORES
        specs[f"sc:{name}"] = MetricSpec(f"sc:{name}", label, ".1%" if unit else ".3g", "pp" if unit else "+.3g",
                                         False, None, f"Mean {label}; relative: difference to the base.",
                                         step=0.01 if unit else None)
        specs[f"scabs:{name}"] = MetricSpec(f"scabs:{name}", f"|Δ {label}|", ".1%" if unit else ".3g",
                                            ".1%" if unit else ".3g", True, 0.0,
                                            f"Mean absolute change of {label} against the base.",
                                            step=0.01 if unit else None)
    if EXACT in score_names:
        specs["r2w"] = MetricSpec("r2w", "Right → wrong (exact match)", ".1%", ".1%", True, 0.0,
                                  "Share of instances the base answers exactly and the model does not.", step=0.01)
        specs["w2r"] = MetricSpec("w2r", "Wrong → right (exact match)", ".1%", ".1%", False, 0.0,
                                  "Share of instances the model answers exactly and the base does not.", step=0.01)
    specs["flip"] = MetricSpec("flip", "Output changed", ".1%", ".1%", True, 0.0,
                               "Share of instances whose output text differs from the base's.", step=0.01)
    if has_kl:
        vs = f"vs {reference}" if reference else "vs each model's root"
        specs["kl"] = MetricSpec("kl", f"KL divergence {vs} (per token)", ".3g", "+.3g", True, None,
                                 f"Mean per-token KL(reference ‖ model) on the reference answer, {vs} "
                                 "(the KL reference, not the chosen base).")
        specs["top1"] = MetricSpec("top1", f"Top-1 token agreement {vs}", ".1%", "pp", False, None,
                                   f"Share of reference tokens where the model's most likely token is the "
                                   f"KL reference's, {vs}.", step=0.01)
    if has_nll:
        specs["nll"] = MetricSpec("nll", "NLL per reference token", ".3f", "+.3f", True, None,
                                  "Mean negative log-likelihood of the reference answer's tokens.")
        specs["ppl"] = MetricSpec("ppl", "Perplexity of the reference", ".3g", "+.3g", True, None,
                                  "exp(mean NLL per reference token).")
    specs["rep"] = MetricSpec("rep", "Repetition (repeated n-grams)", ".1%", "pp", True, None,
                              "Share of repeated n-grams in the output: degenerate text (\"LII LII LII\").",
                              step=0.01)
    return specs


@dataclass
class GenerativeTable:
    """Per-instance arrays of present models (row 0 is the base), built once per selection."""

    models: list[str]
    references: list[list[str]]  # per instance (the task dict's own list: never changed)
    texts: np.ndarray  # object[M, N] output strings
    scores: dict[str, np.ndarray]  # name -> float64[M, N]
    nll: np.ndarray  # float64[M, N] summed over the reference tokens
    ntokens: np.ndarray  # float64[M, N] reference tokens
    klsum: np.ndarray  # float64[M, N] per-token KL summed over the instance's reference tokens
    top1sum: np.ndarray  # float64[M, N] reference tokens whose argmax is the KL reference's
    repetition: np.ndarray  # float64[M, N]
    kl_reference: list[str | None]  # per model
    missing: dict[str, str] = field(default_factory=dict)
    subgroup_cache: dict = field(default_factory=dict, repr=False)
    changed: np.ndarray = field(init=False)  # bool[M, N] output differs from the base's
    correct: np.ndarray = field(init=False)  # bool[M, N] exact match (False where unknown)
    flips: np.ndarray = field(init=False)  # int16[N] compared models whose output differs
    labels: np.ndarray = field(init=False)  # int64[N] all -1: no classes (class groups never match)
    per_token: dict = field(init=False, repr=False)  # "kl" / "top1" / "nll" -> float64[M, N] per-instance means
    _text_bytes: int = field(init=False, repr=False)
    _specs: dict | None = field(default=None, init=False, repr=False)
    _ranked: dict = field(default_factory=dict, init=False, repr=False)  # rank -> all instances in order

    INSTANCE_COLUMNS = (
        ("ref", "Reference", "The first reference answer", "reference"),
        ("base_out", "Base output", "What the base model generated", "base output"),
        ("flips", "Changed", "In how many compared models the output differs from the base's",
         "models whose output changed"),
    )

    def __post_init__(self) -> None:
        self.changed = self.texts != self.texts[0]
        em = self.scores.get(EXACT)
        self.correct = np.nan_to_num(em, nan=0.0) >= 0.5 if em is not None else np.zeros(self.texts.shape, bool)
        self.flips = self.changed[1:].sum(axis=0).astype(np.int16)
        self.labels = np.full(self.n, -1, dtype=np.int64)
        self.per_token = {name: token_means(sums, self.ntokens, _INSTANCES)
                          for name, sums in (("kl", self.klsum), ("top1", self.top1sum), ("nll", self.nll))}
        for values in self.per_token.values():
            values.flags.writeable = False  # views share them: never changed in place
        flat = self.texts.ravel()
        sample = flat[:: max(1, flat.size // 2048)]  # memory is an estimate: a sample's mean text length
        self._text_bytes = int(flat.size * (49 + sum(map(len, sample)) / max(1, sample.size)))  # str objects

    @property
    def n(self) -> int:
        return int(self.texts.shape[1])

    @property
    def score_names(self) -> list[str]:
        return list(self.scores)

    @property
    def primary(self) -> str | None:
        """The score whose drop ranks the top changes: F1, else the first score."""
        return "f1" if "f1" in self.scores else next(iter(self.scores), None)

    @property
    def reference(self) -> str | None:
        """The KL reference all models with KL share (None when they differ or none has KL)."""
        refs = {r for r, k in zip(self.kl_reference, self.klsum) if r is not None and np.isfinite(k).any()}
        return refs.pop() if len(refs) == 1 else None

    def specs(self) -> dict[str, MetricSpec]:
        """The metrics this selection has data for (computed once per table)."""
        if self._specs is None:
            self._specs = generative_specs(self.score_names, self.reference, bool(np.isfinite(self.klsum).any()),
                                           bool(np.isfinite(self.nll).any()))
        return self._specs

    def default_metric(self) -> str:
        return f"sc:{self.primary}" if self.primary else "flip"

    def nbytes(self) -> int:
        arrays = [self.nll, self.ntokens, self.klsum, self.top1sum, self.repetition, *self.per_token.values(),
                  *self.scores.values()]
        return int(sum(a.nbytes for a in arrays)) + self._text_bytes

    # ------------------------------------------------------------------ metric values

    def values(self, metric: str, g: Grouping) -> np.ndarray:
        """Absolute values [M, rows] of a metric per model (row 0 the base)."""
        kind, _, name = metric.partition(":")
        if kind in ("sc", "scabs") and name in self.scores:
            s = self.scores[name]
            return group_means(s if kind == "sc" else np.abs(s - s[0]), g)
        if metric in ("r2w", "w2r") and EXACT in self.scores:
            return group_means(exact_changes(self.scores[EXACT], right_to_wrong=metric == "r2w"), g)
        if metric == "flip":
            return group_means(self.changed.astype(np.float64), g)
        if metric in ("kl", "top1", "nll", "ppl"):
            name = "nll" if metric == "ppl" else metric
            sums = {"kl": self.klsum, "top1": self.top1sum, "nll": self.nll}[name]
            mean = self.per_token[name] if g.codes is None else token_means(sums, self.ntokens, g)
            return np.exp(mean) if metric == "ppl" else mean
        if metric == "rep":
            return group_means(self.repetition, g)
        raise KeyError(metric)

    def exemplar_order(self, order: np.ndarray, rank: str = "broke") -> np.ndarray:
        """Top changes in outputs. "broke" (the default: what a compression study looks for): the
        instances the base answers right and a compared model wrong first, then more models whose
        output changed, then the larger summed drop of the primary score, then the larger summed
        per-token KL. "fixed": the base wrong and a model right first, then the same with the gain."""
        if len(self.models) < 2:
            return order
        if rank not in self._ranked:  # all instances ranked, once per table and rank
            self._ranked[rank] = rank_changes(self.scores.get(EXACT), self.scores.get(self.primary) if self.primary
                                              else None, self.flips, np.nansum(self.per_token["kl"][1:], axis=0),
                                              broke=rank != "fixed")
        ranked = self._ranked[rank]
        keep = np.zeros(self.n, dtype=bool)
        keep[order] = True
        return ranked[keep[ranked]]  # the kept instances in ranking order: no sort

    def damage(self, k: int) -> Damage:
        """Model k's damage per instance (cnc.analysis.worst_samples): exact match right → wrong (else
        the primary score ≥ 0.5), the primary score's drop, the mean per-token KL."""
        primary = self.scores.get(self.primary) if self.primary else None
        right = self.scores.get(EXACT, primary)
        nan = np.full(self.n, np.nan)
        return Damage(nan if right is None else right_to_wrong(right[0], right[k]),
                      nan if primary is None else primary[0] - primary[k], self.per_token["kl"][k])

    # ------------------------------------------------------------------ text

    def instance_cells(self, i: int, full: bool = False) -> dict:
        """The instance columns for instance i: first reference, base output, models changed."""
        refs = self.references[i] if i < len(self.references) else []
        ref, out = (refs[0] if refs else ""), str(self.texts[0, i])
        return {"ref": ref if full else shorten(ref), "base_out": out if full else shorten(out),
                "flips": int(self.flips[i])}

    def instance_detail(self, i: int) -> list[dict]:
        """Per model: output, word-level diff against the base's output, scores and divergences."""
        base = str(self.texts[0, i])
        rows = []
        for k, mid in enumerate(self.models):
            text = str(self.texts[k, i])
            kl, top1 = self.per_token["kl"][k, i], self.per_token["top1"][k, i]
            rows.append({
                "model": mid, "text": text, "changed": bool(self.changed[k, i]),
                "segments": [("same", text)] if k == 0 else word_diff(base, text),
                "changed_share": 0.0 if k == 0 else changed_share(base, text),
                "scores": {name: float(v[k, i]) for name, v in self.scores.items()},
                "kl": float(kl), "top1": float(top1), "repetition": float(self.repetition[k, i]),
                "kl_reference": self.kl_reference[k],
            })
        return rows


_INSTANCES = Grouping([], None, np.zeros(0, dtype=np.int64))  # instance rows: no grouping


def shorten(text: str, limit: int = SHORT) -> str:
    """One line of at most `limit` characters (whitespace runs become one space)."""
    text = str(text)
    if len(text) <= limit and text.isprintable():
        return text
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def exact_changes(em: np.ndarray, right_to_wrong: bool) -> np.ndarray:
    """[M, N] 1.0 where the model's exact match went right→wrong (or wrong→right) against the
    base's (row 0), 0.0 where not, NaN where either is unknown."""
    known = np.isfinite(em) & np.isfinite(em[0])
    right = np.nan_to_num(em, nan=0.0) >= 0.5
    change = right[0] & ~right if right_to_wrong else ~right[0] & right
    return np.where(known, change.astype(np.float64), np.nan)


def rank_changes(exact: np.ndarray | None, primary: np.ndarray | None, flips: np.ndarray, kl: np.ndarray,
                 broke: bool = True) -> np.ndarray:
    """Instance indices [N] in the order of `GenerativeTable.exemplar_order`: `exact` and `primary`
    are [M, N] scores (row 0 the base; "right" is exact match, else a primary score ≥ 0.5), `flips`
    and `kl` [N] per instance. Unknown values never count as a change."""
    n = flips.shape[0]
    right = exact if exact is not None else primary
    if right is None:
        hit = np.zeros(n)
    else:
        hit = (np.nansum(exact_changes(right, right_to_wrong=broke)[1:], axis=0) > 0).astype(np.int64)
    if primary is None:
        change = np.zeros(n)
    else:
        step = primary[0] - primary[1:] if broke else primary[1:] - primary[0]
        change = np.nansum(np.clip(step, 0, None), axis=0)
    return np.lexsort((-kl, -change, -flips.astype(np.int64), -hit))


def token_means(sums: np.ndarray, tokens: np.ndarray, g: Grouping) -> np.ndarray:
    """[M, N] per-instance sums over tokens -> [M, rows] means per token (instance rows: sum /
    tokens; groups: summed over the group's instances first). NaN where unknown or no tokens."""
    ok = np.isfinite(sums) & np.isfinite(tokens) & (tokens > 0)
    num, den = np.where(ok, sums, np.nan), np.where(ok, tokens, np.nan)
    if g.codes is not None:
        num, den = group_sums(num, g)[0], group_sums(den, g)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _array(out: dict, key: str, n: int) -> np.ndarray:
    values = out.get(key)
    if values is None or np.shape(values) != (n,):
        return np.full(n, np.nan)
    return np.asarray(values, dtype=np.float64)


def usable(out: dict | None, n: int) -> bool:
    return bool(out) and isinstance(out.get("texts"), (list, tuple, np.ndarray)) and len(out["texts"]) == n


def why_missing(out: dict | None, n: int, status: str) -> str:
    if out is None:
        return {"pending": "outputs not computed yet (precompute pending)",
                "no data": "no checkpoint or stored outputs"}.get(status, status)
    return f"stored outputs do not match the evaluation set ({n} generated texts expected)"


def build_generative_table(task: dict, models: list[str], get_outputs: Callable[[str], dict | None],
                           status: Callable[[str], str] = lambda m: "no outputs") -> GenerativeTable | None:
    """Stack the stored outputs of `models` (base first) for the task's instances.

    Models without usable outputs are left out and listed in `missing` with the reason. Returns
    None when the base itself has none. Scores are the task's `score_names` (then any other the
    base stores); a model lacking one has NaN there.
    """
    n = len(task.get("prompts") or [])
    base_out = get_outputs(models[0]) if models else None
    if not usable(base_out, n):
        return None
    names = list(dict.fromkeys([*(task.get("score_names") or []), *((base_out.get("scores") or {}).keys())]))
    present, outs, missing = [], [], {}
    for mid in models:
        out = base_out if mid == models[0] else get_outputs(mid)
        if not usable(out, n):
            missing[mid] = why_missing(out, n, status(mid))
            continue
        present.append(mid)
        outs.append(out)
    texts = np.empty((len(outs), n), dtype=object)
    for k, out in enumerate(outs):
        texts[k] = [str(t) for t in out["texts"]]
    ntokens = np.stack([_array(o, "ntokens", n) for o in outs])
    counts = [o.get("ntokens") if np.isfinite(ntokens[k]).all() else None for k, o in enumerate(outs)]
    klsum = np.stack([_sums_or_nan(o.get("kl"), c, n) for o, c in zip(outs, counts)])
    top1sum = np.stack([_sums_or_nan(o.get("top1"), c, n) for o, c in zip(outs, counts)])
    return GenerativeTable(
        models=present, references=task.get("references") or [[]] * n, texts=texts,
        scores={s: np.stack([_array(o.get("scores") or {}, s, n) for o in outs]) for s in names},
        nll=np.stack([_array(o, "nll", n) for o in outs]), ntokens=ntokens, klsum=klsum, top1sum=top1sum,
        repetition=np.stack([_array(o, "repetition", n) for o in outs]),
        kl_reference=[o.get("kl_reference") if isinstance(o.get("kl_reference"), str) else None for o in outs],
        missing=missing,
    )


def _sums_or_nan(flat, counts, n: int) -> np.ndarray:
    """Per-instance sums of a flat per-token array (docs/generative.md); NaN when it is absent or
    its length does not match the token counts."""
    if flat is None or counts is None:
        return np.full(n, np.nan)
    counts = np.asarray(counts, dtype=np.int64)
    try:
        mean = per_instance_mean(flat, counts)
    except ValueError:
        return np.full(n, np.nan)
    return np.where(counts > 0, mean * counts, 0.0)
