"""Named fine-tuning configurations: ``smoke`` (seconds, tiny model), ``quick`` (CPU), ``paper`` (GPU)."""

from __future__ import annotations

from dataclasses import replace

from stages.llm.config import FinetuneConfig

PAPER_LR = {"movie": 8e-4, "game": 5e-4, "artist": 7e-4}


def profile(name: str, domain: str = "movie", **overrides: object) -> FinetuneConfig:
    """The named profile for a domain, with keyword overrides of any ``FinetuneConfig`` field."""
    if name == "smoke":
        config = FinetuneConfig(
            backbone="tiny-random",
            epochs=1,
            micro_batch=4,
            grad_accum=1,
            lr=5e-3,
            max_train_rows=64,
            max_steps=8,
            val_rows=8,
            eval_every=4,
        )
    elif name == "quick":
        # SmolLM2-135M, MovieLens prompts of ~270 tokens: a step of 2 x 2 rows took 5-6 s on 2 idle cores
        # (20-100 s while other jobs shared them), so 32 steps take ~3 min of the pipeline's 20.
        config = FinetuneConfig(
            backbone="smollm2-135m",
            epochs=1,
            micro_batch=2,
            grad_accum=2,
            lr=8e-4,
            max_train_rows=128,
            max_steps=32,
            val_rows=32,
            eval_every=16,
            checkpoint_every=16,
        )
    elif name == "paper":
        micro, accum = (4, 32) if domain == "game" else (8, 16)
        config = FinetuneConfig(
            backbone="smollm2-135m",
            epochs=5,
            micro_batch=micro,
            grad_accum=accum,
            lr=PAPER_LR[domain],
            precision="auto",
            eval_every=100,
            checkpoint_every=100,
        )
    else:
        raise ValueError(f"unknown profile {name!r}: smoke, quick or paper")
    return replace(config, **overrides)  # type: ignore[arg-type]
