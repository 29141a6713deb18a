"""The order of the top changes in outputs (cnc.analysis.generative_behaviors.rank_changes and the
Behaviors state that chooses it): what compression broke first, the other direction on request."""
from __future__ import annotations

import numpy as np

from cnc.analysis import behavior_view
from cnc.analysis.generative_behaviors import rank_changes

NAN = np.nan
# base, then two compressed models; six instances
EXACT = np.array([[1, 1, 1, 0, 0, 1],
                  [0, 1, 0, 1, 0, 1],
                  [1, 1, 0, 0, NAN, 1]], float)
F1 = np.array([[1.0, 1.0, 1.0, 0.0, 0.2, 1.0],
               [0.6, 1.0, 0.0, 1.0, 0.9, 1.0],
               [1.0, 1.0, 0.5, 0.0, NAN, 0.8]])
FLIPS = np.array([1, 0, 2, 1, 1, 1], np.int16)
KL = np.array([0.1, 0.0, 0.2, 0.3, 5.0, 0.4])


def test_broke_puts_base_right_model_wrong_first_then_changed_models_then_drop():
    order = rank_changes(EXACT, F1, FLIPS, KL).tolist()
    # 2 and 0 break (base right, a model wrong): 2 first (two models changed); then the rest by
    # changed models (all one, or none), then F1 drop (5: 0.2, 4 and 3: none), then KL
    assert order == [2, 0, 5, 4, 3, 1]
    assert EXACT[0, order[0]] == 1 and (EXACT[1:, order[0]] == 0).any()


def test_fixed_puts_base_wrong_model_right_first_then_gain():
    order = rank_changes(EXACT, F1, FLIPS, KL, broke=False).tolist()
    assert order[0] == 3  # base wrong, model 1 right; 4 is unknown for model 2, wrong for model 1: no fix
    assert order[1:] == [2, 4, 5, 0, 1]  # changed models, then F1 gain (4: 0.7), then KL (5: 0.4, 0: 0.1)


def test_unknown_exact_match_never_counts_and_scores_decide_without_it():
    em = np.array([[1, 1], [NAN, 0]], float)
    assert rank_changes(em, None, np.array([1, 1]), np.zeros(2)).tolist() == [1, 0]
    f1 = np.array([[0.9, 0.9], [0.8, 0.1]])  # no exact match: "right" is F1 >= 0.5
    assert rank_changes(None, f1, np.array([1, 1]), np.zeros(2)).tolist() == [1, 0]
    assert rank_changes(None, None, np.array([0, 2]), np.array([0.0, 1.0])).tolist() == [1, 0]


def test_rank_is_part_of_the_view_state_and_its_key():
    a, b = behavior_view.ViewState(mode="exemplars"), behavior_view.ViewState(mode="exemplars", rank="fixed")
    assert a.rank == behavior_view.RANKS[0] == "broke" and a.key() != b.key()
