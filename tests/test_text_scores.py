"""Scores of generated text against hand-computed values (SQuAD rules, repetition, named scorers)."""
import math

import numpy as np
import pytest

from cnc.analysis.text_scores import (
    exact_match,
    normalize_answer,
    repetition,
    repetition_all,
    resolve_scorers,
    score_all,
    token_f1,
)


def test_squad_normalization():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words


def test_exact_match_is_best_over_references():
    assert exact_match("the Denver Broncos", ["Carolina Panthers", "Denver Broncos."]) == 1.0
    assert exact_match("Denver", ["Denver Broncos"]) == 0.0
    assert math.isnan(exact_match("anything", []))


def test_token_f1_hand_computed():
    # pred {super, bowl, lii, lii, lii} vs ref {super, bowl, 50}: common 2 -> P 2/5, R 2/3, F1 = 0.5
    assert token_f1("Super Bowl LII LII LII", ["Super Bowl 50"]) == pytest.approx(0.5)
    # repeated words count once each against the reference's multiset: common = min counts
    assert token_f1("a cat cat", ["cat cat cat dog"]) == pytest.approx(2 * (2 / 2) * (2 / 4) / (2 / 2 + 2 / 4))
    assert token_f1("Broncos", ["Panthers", "Denver Broncos"]) == pytest.approx(2 / 3)  # P 1, R 1/2
    assert token_f1("", [""]) == 1.0 and token_f1("", ["x"]) == 0.0
    assert token_f1("the", ["a"]) == 1.0  # both normalize to empty


def test_repetition_hand_computed():
    assert repetition("Super Bowl LII LII LII") == pytest.approx(0.25)  # 4 bigrams, 3 distinct
    assert repetition("a a a a") == pytest.approx(2 / 3)
    assert repetition("the quick brown fox") == 0.0
    assert repetition("one") == 0.0  # no bigram at all
    assert repetition("Super Bowl LII LII LII", n=1) == pytest.approx(1 - 3 / 5)
    assert repetition_all(["x y x y", "z"]).dtype == np.float32


def test_score_all_with_a_callable_and_named_scorers():
    scorers = resolve_scorers({"length": lambda pred, refs: len(pred.split())})
    out = score_all(["Denver Broncos", "no idea"], [["Denver Broncos"], ["Paris"]], scorers)
    assert set(out) == {"exact_match", "f1", "length"}
    assert out["exact_match"].tolist() == [1.0, 0.0] and out["length"].tolist() == [2.0, 2.0]


def test_rouge_l_and_chrf():
    scorers = resolve_scorers({"rl": "rouge_l", "chrf": "chrf"})
    # LCS("the cat sat on the mat", "the cat on a mat") = "the cat on mat" (4): P 4/5, R 4/6
    rl = scorers["rl"]("the cat on a mat", ["the cat sat on the mat"])
    assert rl == pytest.approx(2 * (4 / 5) * (4 / 6) / (4 / 5 + 4 / 6))
    assert scorers["chrf"]("identical text", ["identical text"]) == pytest.approx(1.0)
    assert 0 < scorers["chrf"]("identical test", ["identical text"]) < 1


def test_bad_scorers_are_named():
    with pytest.raises(ValueError, match="'bleu'"):
        resolve_scorers({"b": "bleu"})
    with pytest.raises(ValueError, match="built in"):
        resolve_scorers({"f1": "chrf"})
    with pytest.raises(ValueError, match="'bad' returned str"):
        score_all(["x"], [["x"]], resolve_scorers({"bad": lambda p, r: "oops"}))
