"""Training: deterministic under a seed, both losses run, and a trained model beats random."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stages.seqrec import pretrain
from stages.seqrec.config import PretrainConfig
from stages.seqrec.data import load_prepared
from stages.seqrec.evaluate import evaluate
from stages.seqrec.models import build_model
from stages.seqrec.train import train


def fit(prepared: Path, **kw) -> tuple[torch.nn.Module, float]:
    cfg = PretrainConfig(**{"epochs": 3, "batch_size": 32, "progress": False, "threads": 1, **kw})
    data = load_prepared(prepared)
    torch.manual_seed(cfg.seed)
    text = torch.randn(data.n_items, 384) if cfg.model == "morec" else None
    model = build_model(cfg.model, data.n_items, text=text)
    train(model, data.splits["train"], data.splits["val"], cfg)
    report, _, _ = evaluate(model, data.splits["test"])
    return model, report["hr@1"].mean


def test_same_seed_same_weights(prepared: Path, tmp_path: Path) -> None:
    """The pretrain stage seeds itself: the process's RNG state before it does not matter."""
    config = PretrainConfig(model="sasrec", epochs=2, batch_size=32, progress=False, threads=1)
    weights = {}
    for name, outside in (("a", 1), ("b", 2), ("other-seed", 1)):
        torch.manual_seed(outside)  # whatever ran in this process before the stage
        torch.rand(outside)
        seed = 1 if name == "other-seed" else config.seed
        (tmp_path / name).mkdir()  # the store hands a stage an existing directory
        pretrain.run(replace(config, seed=seed), {"data": prepared}, tmp_path / name)
        weights[name] = load_file(str(tmp_path / name / "model.safetensors"))
    assert weights["a"].keys() == weights["b"].keys()
    for key in weights["a"]:
        assert torch.equal(weights["a"][key], weights["b"][key]), key
    assert any(not torch.equal(weights["a"][k], weights["other-seed"][k]) for k in weights["a"])


@pytest.mark.parametrize("loss", ["ce", "bce1"])
@pytest.mark.parametrize("model", ["sasrec", "gru4rec", "caser", "morec"])
def test_losses_run(prepared: Path, model: str, loss: str) -> None:
    """Each loss trains each model: the weights move and the epoch's training loss falls."""
    cfg = PretrainConfig(model=model, loss=loss, epochs=3, patience=3, lr=1e-2, batch_size=32, progress=False)
    data = load_prepared(prepared)
    torch.manual_seed(cfg.seed)
    text = torch.randn(data.n_items, 384) if model == "morec" else None
    net = build_model(model, data.n_items, text=text)
    initial = copy.deepcopy(net.state_dict())
    result = train(net, data.splits["train"], data.splits["val"], cfg)
    losses = [epoch["loss"] for epoch in result.log]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0], losses
    assert any(not torch.equal(initial[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("model", ["sasrec", "gru4rec", "sasrec-conv"])
def test_learns_the_toy_structure(prepared: Path, model: str) -> None:
    """next = last + 1: a trained model must far exceed the 1/20 of random guessing."""
    _, hr1 = fit(prepared, model=model, epochs=25, lr=1e-2, patience=25)
    assert hr1 > 0.3


def test_rejects_unknown_loss() -> None:
    with pytest.raises(ValueError):
        PretrainConfig(loss="bpr")


@pytest.mark.parametrize(("min_epochs", "epochs_run"), [(1, 2), (5, 5)])
def test_early_stopping_waits_for_min_epochs(prepared: Path, min_epochs: int, epochs_run: int) -> None:
    """lr 0: validation never improves after epoch 0; patience 1 stops at once unless min_epochs holds it."""
    cfg = PretrainConfig(epochs=5, patience=1, min_epochs=min_epochs, lr=0.0, batch_size=32, progress=False)
    data = load_prepared(prepared)
    model = build_model("sasrec", data.n_items)
    result = train(model, data.splits["train"], data.splits["val"], cfg)
    assert len(result.log) == epochs_run and result.best_epoch == 0


def test_authors_recipe_config() -> None:
    from stages.seqrec.chosen import authors_config, describe

    cfg = authors_config("sasrec", seed=3)
    assert (cfg.model, cfg.loss, cfg.lr, cfg.weight_decay, cfg.seed) == ("sasrec-conv", "bce1", 1e-3, 1e-4, 3)
    assert authors_config("gru4rec").model == "gru4rec"
    assert "loss=bce1" in describe(cfg) and "weight_decay=0.0001" in describe(cfg)
