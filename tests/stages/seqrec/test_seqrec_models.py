"""Shapes and masking of the four recommenders: padding must never leak into the output."""

from __future__ import annotations

import pytest
import torch

from stages.seqrec.models import MODELS, Caser, build_model

N, L = 30, 10


def make(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    text = torch.randn(N, 384) if name == "morec" else None
    return build_model(name, N, L, 64, 0.1, text).eval()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([3, 7, 10, 1])
    history = torch.full((4, L), N)
    for i, n in enumerate(lengths.tolist()):
        history[i, :n] = torch.arange(n) + i
    return history, lengths


def set_pad_row(model: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        if hasattr(model.items, "text"):
            model.items.text[-1] = value
        else:
            model.items.weight.weight[-1] = value


@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_table(name: str) -> None:
    model = make(name)
    history, lengths = batch()
    assert model(history, lengths).shape == (4, N)
    assert model.items.table().shape == (N, 64)


def test_caser_head_has_112_inputs() -> None:
    model = make("caser")
    assert isinstance(model, Caser) and model.head.in_features == 16 * 3 + 64 == 112


@pytest.mark.parametrize("name", MODELS)
def test_padding_row_and_padded_items_do_not_leak(name: str) -> None:
    model = make(name)
    history, lengths = batch()
    before = model(history, lengths)
    set_pad_row(model, 123.0)  # a wild padding embedding
    assert torch.allclose(model(history, lengths), before, atol=1e-5)
    junk = history.clone()
    pad = torch.arange(L)[None, :] >= lengths[:, None]
    junk[pad] = torch.randint(0, N, (int(pad.sum()),))  # real-looking ids in the padded slots
    assert torch.allclose(model(junk, lengths), before, atol=1e-5)


def _every_state(model: torch.nn.Module, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, L, d): the states at every position (``state`` returns the last real one), from ``ln_3``."""
    seen: list[torch.Tensor] = []
    hook = model.ln_3.register_forward_hook(lambda module, args, out: seen.append(out.detach()))
    try:
        last = model.state(history, lengths)
    finally:
        hook.remove()
    assert torch.equal(seen[0][torch.arange(len(lengths)), lengths - 1], last)
    return seen[0]


@pytest.mark.parametrize("name", ["sasrec", "morec", "sasrec-conv"])
def test_sasrec_state_is_causal(name: str) -> None:
    """The state at position t must not depend on a later real item, whatever it is."""
    model = make(name)
    generator = torch.Generator().manual_seed(0)
    history = torch.randint(0, N, (2, L), generator=generator)
    full = torch.full((2,), L)  # every position holds a real item
    before = _every_state(model, history, full)
    for t in (1, 4, 8):
        changed = history.clone()
        changed[:, t + 1] = (history[:, t + 1] + 1 + torch.arange(2)) % N  # another real item at t + 1
        after = _every_state(model, changed, full)
        assert torch.allclose(after[:, : t + 1], before[:, : t + 1], atol=1e-6)  # up to t: unmoved
        assert not torch.allclose(after[:, t + 1], before[:, t + 1], atol=1e-3)  # t + 1 sees its item
    assert model.state(history, full).shape == (2, 64)


def test_morec_only_trains_the_linear_map() -> None:
    model = make("morec")
    trainable = {n for n, p in model.named_parameters() if n.startswith("items.")}
    assert trainable == {"items.proj.weight", "items.proj.bias"}
    assert "items.text" in model.state_dict()


@pytest.mark.parametrize("name", [m for m in MODELS if m != "morec"])
def test_dropout_acts_in_training_only(name: str) -> None:
    torch.manual_seed(0)
    history, lengths = torch.randint(0, N, (8, L)), torch.full((8,), L)
    model = build_model(name, N, L, 64, 0.5).train()
    assert not torch.equal(model(history, lengths), model(history, lengths))
    model.eval()
    assert torch.equal(model(history, lengths), model(history, lengths))
