"""Per-instance scores of generated text against reference answers (pure; no torch, no Dash).

Built in: SQuAD-style `exact_match` and token `f1` (the official SQuAD v1.1 normalization:
lowercase, drop punctuation, drop the articles a/an/the, collapse whitespace; the best score over
the references), and `repetition`, the degeneration signal. Optional scorers by name, imported
only when a task names them: "rouge_l" (ROUGE-L F-measure, `rouge-score`) and "chrf" (chrF,
`sacrebleu`, scaled to 0..1); a task may also give any callable(prediction, references) -> float.

An instance without references scores NaN (not scored) on every reference-based score.
"""
from __future__ import annotations

import functools
import math
import re
import string
from collections import Counter
from typing import Callable, Mapping, Sequence

import numpy as np

Scorer = Callable[[str, Sequence[str]], float]

REPETITION_N = 2
_NO_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@functools.lru_cache(maxsize=1 << 16)  # references are normalized once for every model, not per model
def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalization: lowercase, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_NO_PUNCT)).split())


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalized prediction equals some normalized reference, else 0.0."""
    if not references:
        return math.nan
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(ref) for ref in references))


def _f1(pred_tokens: list[str], ref_tokens: list[str]) -> float:
    if not pred_tokens or not ref_tokens:  # SQuAD v2 convention: both empty is a match
        return float(pred_tokens == ref_tokens)
    common = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD token F1 (bag of normalized words), the best over the references."""
    if not references:
        return math.nan
    pred = normalize_answer(prediction).split()
    return max(_f1(pred, normalize_answer(ref).split()) for ref in references)


def repetition(text: str, n: int = REPETITION_N) -> float:
    """Share of the output's word n-grams that repeat an earlier one: 1 - distinct / total.

    Words are lowercased and stripped of punctuation (articles are kept: "a a a" must count).
    With n = 2, "Super Bowl LII LII LII" scores 0.25 (4 bigrams, 3 distinct), "a a a a" 2/3 and
    ordinary text 0; a text of fewer than n words scores 0. n = 2 rather than 1 because single
    words repeat in healthy text ("the", names), while a repeated bigram within one short answer
    is nearly always the degenerate loop that broken compression produces first.
    """
    words = text.lower().translate(_NO_PUNCT).split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)


def _rouge_l() -> Scorer:
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise ValueError("scorer 'rouge_l' needs the rouge-score package: pip install rouge-score==0.1.2") from None
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

    def rouge_l(prediction: str, references: Sequence[str]) -> float:
        if not references:
            return math.nan
        return max(scorer.score(ref, prediction)["rougeL"].fmeasure for ref in references)

    return rouge_l


def _chrf() -> Scorer:
    try:
        from sacrebleu.metrics import CHRF
    except ImportError:
        raise ValueError("scorer 'chrf' needs the sacrebleu package: pip install sacrebleu==2.6.0") from None
    metric = CHRF()

    def chrf(prediction: str, references: Sequence[str]) -> float:
        if not references:
            return math.nan
        return metric.sentence_score(prediction, list(references)).score / 100.0

    return chrf


NAMED: dict[str, Callable[[], Scorer]] = {"rouge_l": _rouge_l, "chrf": _chrf}
BUILT_IN: dict[str, Scorer] = {"exact_match": exact_match, "f1": token_f1}


def resolve_scorers(spec: Mapping[str, str | Scorer] | None) -> dict[str, Scorer]:
    """The built-in scores plus a task's `scorers` mapping {score name: "rouge_l" | "chrf" |
    callable}; a ValueError names an unknown scorer or a clash with a built-in score name."""
    found = dict(BUILT_IN)
    for name, how in (spec or {}).items():
        if name in found or name == "repetition":
            raise ValueError(f"scorer name '{name}' is built in; give the task's scorer another name")
        if callable(how):
            found[name] = how
        elif isinstance(how, str) and how in NAMED:
            found[name] = NAMED[how]()
        else:
            raise ValueError(f"scorer '{name}': {how!r} is neither a callable(prediction, references) "
                             f"nor one of {sorted(NAMED)}")
    return found


def score_all(predictions: Sequence[str], references: Sequence[Sequence[str]],
              scorers: Mapping[str, Scorer]) -> dict[str, np.ndarray]:
    """{score name: float32[N]} for every scorer over every instance."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} reference lists")
    out = {}
    for name, scorer in scorers.items():
        values = []
        for pred, refs in zip(predictions, references):
            value = scorer(pred, list(refs))
            try:
                values.append(float(value))
            except (TypeError, ValueError):
                raise ValueError(f"scorer '{name}' returned {type(value).__name__}; it must return a number") from None
        out[name] = np.asarray(values, dtype=np.float32)
    return out


def repetition_all(texts: Sequence[str], n: int = REPETITION_N) -> np.ndarray:
    return np.asarray([repetition(t, n) for t in texts], dtype=np.float32)
