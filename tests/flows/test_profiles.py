"""Pipeline profiles: the per-domain, per-model recommender settings of the paper profile."""

from __future__ import annotations

import pytest

from flows.profiles import PAPER_PRETRAIN, pipeline_profile
from stages.seqrec.config import PretrainConfig


def test_paper_profile_applies_the_lastfm_settings_per_model() -> None:
    plan = pipeline_profile("paper", "artist")
    shared, own = PAPER_PRETRAIN["artist"]
    for model in ("sasrec", "gru4rec", "caser", "morec"):
        cfg = plan.pretrain_for(model, seed=2)
        assert (cfg.model, cfg.seed, cfg.epochs, cfg.patience) == (model, 2, shared.epochs, shared.patience)
        for name, value in own.get(model, {}).items():
            assert getattr(cfg, name) == value
    assert plan.pretrain_for("caser", 0, loss="bce1").loss == "bce1"


def test_other_domains_and_profiles_use_the_defaults() -> None:
    default = PretrainConfig()
    cfg = pipeline_profile("paper", "movie").pretrain_for("caser", 0)
    assert cfg == PretrainConfig(model="caser", seed=0)
    quick = pipeline_profile("quick", "artist").pretrain_for("caser", 0)
    assert quick.weight_decay == default.weight_decay and quick.epochs == 12


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        pipeline_profile("huge", "movie")
