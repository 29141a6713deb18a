"""token_logprobs against log_softmax computed directly in float64: block boundaries, padding rows
skipped, a reference's top-k with its tail, this model's own top-k, ties and a vanishing tail."""
from __future__ import annotations

import numpy as np
import torch

from cnc.analysis.token_divergence import tail_logmass
from cnc.evaluation import token_logprobs as tl


def test_matches_log_softmax_across_blocks(monkeypatch):
    monkeypatch.setattr(tl, "BLOCK_VALUES", 3 * 50)  # three rows per block: several blocks and a ragged last one
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(11, 50, generator=g) * 4
    rows = torch.tensor([0, 1, 2, 4, 5, 7, 8, 9, 10])  # rows 3 and 6 are padding
    targets = torch.randint(0, 50, (9,), generator=g)
    ref_ids = torch.stack([torch.randperm(50, generator=g)[:5] for _ in range(9)])
    ref_ids[2, 0] = logits[rows[2]].argmax()  # the reference's top token is this model's top token here
    got = tl.token_logprobs(logits, rows, targets, ref_ids, k=4)
    lp = torch.log_softmax(logits.double(), -1)[rows]
    np.testing.assert_allclose(got["target"], lp.gather(-1, targets[:, None])[:, 0], atol=1e-5)
    np.testing.assert_allclose(got["ref_logprob"], lp.gather(-1, ref_ids), atol=1e-5)
    np.testing.assert_allclose(got["ref_tail"], tail_logmass(lp.numpy(), ref_ids.numpy()), atol=1e-5)
    assert got["ref_is_top"].tolist() == (lp.argmax(-1) == ref_ids[:, 0]).tolist() and got["ref_is_top"][2]
    values, ids = lp.topk(4, -1)
    assert got["ids"].tolist() == ids.tolist()
    np.testing.assert_allclose(got["values"], values, atol=1e-5)
    np.testing.assert_allclose(got["tail"], tail_logmass(lp.numpy(), ids.numpy()), atol=1e-5)


def test_a_tie_never_counts_as_top_and_a_vanishing_tail_stays_finite():
    logits = torch.full((3, 6), -200.0)
    logits[0, [1, 3]] = 5.0  # a tie for the top token: no top token
    logits[1, 2] = 5.0       # all the mass on one token: the tail underflows float32
    logits[2] = 0.0          # every logit equal
    got = tl.token_logprobs(logits, torch.arange(3), torch.tensor([1, 2, 0]), torch.tensor([[3], [2], [0]]))
    assert got["ref_is_top"].tolist() == [False, True, False]
    assert torch.isfinite(got["ref_tail"]).all() and got["ref_tail"][1] < -80
    np.testing.assert_allclose(got["target"], [np.log(0.5), 0.0, -np.log(6)], atol=1e-6)


def test_no_tokens_give_empty_arrays_of_the_right_shapes():
    got = tl.token_logprobs(torch.zeros(3, 8), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                            torch.zeros((0, 4), dtype=torch.long), k=4)
    assert got["target"].shape == (0,) and got["ref_logprob"].shape == (0, 4) and got["ids"].shape == (0, 4)
