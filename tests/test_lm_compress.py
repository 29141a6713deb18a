"""Language-model compression operations on hand-checkable tensors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cnc.toolkit import lm_compress as lc
from cnc.toolkit.measure import payload_bytes


class Toy(nn.Module):
    """Embedding -> LayerNorm -> Linear(4 -> 2) -> LayerNorm -> Linear(2 -> 8, no bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(3, 4)
        self.ln = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 2)
        self.ln_out = nn.LayerNorm(2)
        self.head = nn.Linear(2, 8, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.ln_out(self.fc(self.ln(self.emb(ids)))))


def close(t: torch.Tensor, expected: list) -> bool:
    return torch.allclose(t, torch.tensor(expected), atol=1e-6)


def toy() -> Toy:
    m = Toy()
    with torch.no_grad():
        m.emb.weight.copy_(torch.tensor([[0.5, -0.6, 0.7, -0.8]] * 3) * torch.tensor([[1.0], [2.0], [3.0]]))
        m.ln.weight.copy_(torch.tensor([0.01, 0.02, 0.03, 0.04]))  # the smallest weights of the model
        m.ln.bias.copy_(torch.tensor([0.1, 0.1, 0.1, 0.1]))
        m.fc.weight.copy_(torch.tensor([[0.9, -0.1, 0.05, 0.3], [-0.2, 0.6, -0.07, 0.4]]))
        m.fc.bias.fill_(0.5)
        m.ln_out.weight.copy_(torch.tensor([1.5, 2.5]))
        m.head.weight.copy_(torch.linspace(0.5, 2.0, 16).view(8, 2))
    return m


def test_lm_weights_lists_linear_embedding_and_norm_gains() -> None:
    m = toy()
    assert list(lc.lm_weights(m)) == ["emb.weight", "ln.weight", "fc.weight", "ln_out.weight", "head.weight"]
    assert list(lc.lm_weights(m, norms=False, embeddings=False)) == ["fc.weight", "head.weight"]


def test_global_prune_hits_norm_gains_first() -> None:
    m = toy()
    total = 12 + 4 + 8 + 2 + 16  # 42 weights compete; biases do not
    pruned = lc.global_magnitude_prune(m, 6 / total)
    # the six smallest magnitudes: the four ln gains (0.01..0.04), fc's 0.05 and -0.07
    assert torch.equal(pruned.ln.weight, torch.zeros(4))
    assert close(pruned.fc.weight, [[0.9, -0.1, 0.0, 0.3], [-0.2, 0.6, 0.0, 0.4]])
    assert torch.equal(pruned.ln.bias, m.ln.bias)
    assert torch.equal(pruned.emb.weight, m.emb.weight)
    assert float(m.ln.weight.detach().sum()) == pytest.approx(0.1), "the input model is left untouched"


def test_layerwise_prune_spares_norms_and_embeddings() -> None:
    m = toy()
    pruned = lc.layerwise_prune(m, 0.5)
    assert torch.equal(pruned.ln.weight, m.ln.weight) and torch.equal(pruned.emb.weight, m.emb.weight)
    assert close(pruned.fc.weight, [[0.9, 0.0, 0.0, 0.3], [0.0, 0.6, 0.0, 0.4]])
    assert int((pruned.head.weight == 0).sum()) == 8


def test_restore_norms_puts_back_the_base_norms_only() -> None:
    m = toy()
    pruned = lc.global_magnitude_prune(m, 0.5)
    restored = lc.restore_norms(pruned, m)
    for name in ("ln", "ln_out"):
        assert torch.equal(getattr(restored, name).weight, getattr(m, name).weight)
        assert torch.equal(getattr(restored, name).bias, getattr(m, name).bias)
    assert torch.equal(restored.fc.weight, pruned.fc.weight) and torch.equal(restored.emb.weight, pruned.emb.weight)
    assert torch.equal(pruned.ln.weight, torch.zeros(4)), "the pruned model is left untouched"


def test_restore_norms_rejects_another_architecture() -> None:
    other = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(ValueError, match="no LayerNorm named 'ln'"):
        lc.restore_norms(toy(), other)


def test_two_four_keeps_the_two_largest_of_every_four() -> None:
    m = toy()
    pruned = lc.semi_structured_prune(nn.Sequential(m.fc))[0]
    assert close(pruned.weight, [[0.9, 0.0, 0.0, 0.3], [0.0, 0.6, 0.0, 0.4]])
    assert torch.equal(pruned.bias, m.fc.bias)
    with pytest.raises(ValueError, match="'head' has 2 inputs, not a multiple of 4"):
        lc.semi_structured_prune(m)


def test_two_four_on_a_wide_layer() -> None:
    layer = nn.Linear(8, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -4.0, 3.0, 2.0, -0.5, 0.1, 0.2, -0.3]]))
    out = lc.semi_structured_prune(nn.Sequential(layer))[0].weight
    assert close(out, [[0.0, -4.0, 3.0, 0.0, -0.5, 0.0, 0.0, -0.3]])


def test_int8_per_channel_round_to_nearest() -> None:
    m = toy()
    q = lc.quantize_weights(m, bits=8)
    # fc row 0: scale 0.9/127; -0.1 -> round(-14.11) = -14 -> -14 * 0.9/127
    scale0 = torch.tensor(0.9 / 127).half().float()
    assert float(q.fc.weight.detach()[0, 1]) == pytest.approx(-14 * float(scale0), rel=1e-6)
    assert float(q.fc.weight.detach()[0, 0]) == pytest.approx(127 * float(scale0), rel=1e-6)
    assert torch.equal(q.ln.weight, m.ln.weight) and torch.equal(q.emb.weight, m.emb.weight)
    assert lc.weight_quant_info(q).bits == 8 and lc.weight_quant_info(m) is None


def test_int4_groups_round_to_nearest() -> None:
    layer = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.7, 0.24, -1.4, 0.45]]))
    q = lc.quantize_weights(nn.Sequential(layer), bits=4, group_size=2)[0].weight
    # group 1: scale 0.7/7 = 0.1 -> 7, 2.4 -> 2 ; group 2: scale 0.2 -> -7, 2.25 -> 2
    s1, s2 = (float(torch.tensor(v).half()) for v in (0.1, 0.2))
    assert q.tolist()[0] == pytest.approx([7 * s1, 2 * s1, -7 * s2, 2 * s2], rel=1e-6)
    with pytest.raises(ValueError, match="group_size 3 must divide"):
        lc.quantize_weights(nn.Sequential(layer), bits=4, group_size=3)
    with pytest.raises(ValueError, match="8 or 4 bits"):
        lc.quantize_weights(nn.Sequential(layer), bits=3)


@pytest.mark.parametrize("bits,group,ratio", [(8, None, 0.25), (4, 2, 0.125)])
def test_quantized_checkpoint_round_trips_and_shrinks(tmp_path, bits, group, ratio) -> None:
    m = toy()
    q = lc.quantize_weights(m, bits=bits, group_size=group)
    path = lc.save_checkpoint(q, tmp_path / "q.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == lc.WQ_FORMAT
    expected = torch.int8 if bits == 8 else torch.uint8
    assert payload["qweight"]["fc.weight"].dtype == expected
    assert payload["qweight"]["fc.weight"].numel() == 8 * (bits / 8)
    loaded = lc.load_checkpoint(toy(), path)
    for (name, a), (_, b) in zip(q.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert lc.weight_quant_info(loaded).bits == bits
    ids = torch.tensor([[0, 1, 2]])
    assert torch.equal(q(ids), loaded(ids))
    # linear weights shrink to 1 or 1/2 byte (plus scales); the rest stays float
    fc_bytes = payload_bytes(payload["qweight"]["fc.weight"])
    assert fc_bytes == 8 * 4 * ratio


def test_pruned_float_checkpoint_round_trips(tmp_path) -> None:
    pruned = lc.global_magnitude_prune(toy(), 0.3)
    loaded = lc.load_checkpoint(toy(), lc.save_checkpoint(pruned, tmp_path / "p.pt"))
    assert all(torch.equal(a, b) for a, b in zip(pruned.state_dict().values(), loaded.state_dict().values()))


def test_fine_tune_keeps_zeros_and_learns() -> None:
    torch.manual_seed(0)
    m = toy()
    ids = torch.randint(0, 3, (64, 5))
    targets = (ids + 1) % 8
    targets[:, :2] = -100  # no loss on the "prompt"
    pruned = lc.global_magnitude_prune(m, 0.3)
    with torch.no_grad():
        before = float(lc.lm_loss(pruned, ids, targets))
    tuned = lc.fine_tune_lm(pruned, (ids, targets), steps=60, lr=0.05, batch_size=16)
    with torch.no_grad():
        assert float(lc.lm_loss(tuned, ids, targets)) < before
    for name, p in lc.lm_weights(pruned).items():
        assert bool((dict(tuned.named_parameters())[name][p == 0] == 0).all()), name


def test_norm_decay_shrinks_norm_gains() -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, 3, (64, 5))
    targets = (ids + 1) % 8
    plain = lc.train_lm(toy(), (ids, targets), steps=80, lr=0.02, batch_size=16)
    decayed = lc.train_lm(toy(), (ids, targets), steps=80, lr=0.02, batch_size=16, norm_decay=5.0)
    assert float(decayed.ln_out.weight.detach().abs().mean()) < 0.8 * float(plain.ln_out.weight.detach().abs().mean())


def test_norm_decay_per_module() -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, 3, (64, 5))
    targets = (ids + 1) % 8
    before = toy()
    trained = lc.train_lm(toy(), (ids, targets), steps=80, lr=0.02, batch_size=16, norm_decay={"ln_out": 5.0})
    assert float(trained.ln_out.weight.detach().abs().mean()) < 0.5 * float(before.ln_out.weight.detach().abs().mean())
    with pytest.raises(ValueError, match=r"norm_decay names \['fc'\]"):
        lc.train_lm(toy(), (ids, targets), steps=1, lr=0.02, norm_decay={"fc": 1.0})


def test_quantized_models_are_not_trained_or_requantized() -> None:
    q = lc.quantize_weights(toy(), bits=8)
    with pytest.raises(ValueError, match="already quantized"):
        lc.quantize_weights(q, bits=4, group_size=2)
    with pytest.raises(ValueError, match="cannot train a quantized model"):
        lc.fine_tune_lm(q, (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)), steps=1)
