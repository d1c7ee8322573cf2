"""Stage-1 settings chosen on validation, per dataset domain, for whoever trains a recommender.

One table read by ``llara pretrain`` (``--profile chosen``, its default) and by the ``paper``
pipeline profile, so a user training by hand gets what the pipeline gets. Each entry: the shared
``PretrainConfig`` and each model's own values over it, chosen on validation NDCG@5 with
``stages.seqrec.sweep`` (never on test); the runs are in docs/seqrec_results.md. A domain without
an entry uses ``PretrainConfig``'s defaults.
"""

from __future__ import annotations

from dataclasses import replace

from stages.seqrec.config import PretrainConfig

# "artist" = LastFM (docs/seqrec_results.md, "LastFM: settings chosen on validation").
CHOSEN: dict[str, tuple[PretrainConfig, dict[str, dict]]] = {
    "artist": (
        PretrainConfig(epochs=60, patience=8),
        {
            "gru4rec": {"lr": 3e-3},
            "caser": {"weight_decay": 1e-4},
            "sasrec": {"lr": 3e-3, "dropout": 0.7, "weight_decay": 1e-4},  # L2 1e-4: 2026-12-01 sweep
        },
    ),
}


# The LLaRA authors' recipe, as their released checkpoints record it (archive name: lr 1e-3, L2 1e-4,
# seed 1234; BCE with one sampled negative) with their SASRec architecture (Conv1d feed-forward with
# its own LayerNorm, stages/seqrec/released.py). Their fixed seed 1234 is not imposed: pass --seed.
AUTHORS_RECIPE: dict = {"loss": "bce1", "lr": 1e-3, "weight_decay": 1e-4}
AUTHORS_ARCHITECTURE = {"sasrec": "sasrec-conv"}


def authors_config(model: str, **overrides: object) -> PretrainConfig:
    """The authors' recipe for ``model`` (SASRec becomes their architecture); ``overrides`` win."""
    return PretrainConfig(model=AUTHORS_ARCHITECTURE.get(model, model), **{**AUTHORS_RECIPE, **overrides})


def chosen_config(domain: str, model: str, **overrides: object) -> tuple[PretrainConfig, bool]:
    """(config, whether this domain has chosen settings) for ``model``; ``overrides`` win."""
    shared, own = CHOSEN.get(domain, (PretrainConfig(), {}))
    return replace(shared, model=model, **{**own.get(model, {}), **overrides}), domain in CHOSEN


def describe(config: PretrainConfig, base: PretrainConfig | None = None) -> str:
    """The fields that differ from ``base`` (default: ``PretrainConfig()``), as ``a=1 b=2``."""
    base = base or PretrainConfig()
    skip = (*PretrainConfig.NOT_IN_ID, "model")
    diff = [f"{k}={v}" for k, v in config.as_dict().items()
            if k not in skip and getattr(base, k) != v]
    return " ".join(diff) or "the PretrainConfig defaults"
