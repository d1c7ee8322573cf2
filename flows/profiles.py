"""Named pipeline profiles: one place that sets every stage's config for a kind of run.

- ``smoke``: a tiny random LLM and a few steps; the whole DAG in about a minute (tests, CI).
- ``quick``: SmolLM2-135M on CPU, sized so ``make run`` stays within 12 minutes on 2 cores.
- ``paper``: the public hyperparameters, for a GPU (SPEC §4).
- ``long``: the paper's recipe on a CPU for a step budget T (``--max-steps T``), hours of
  training with validation on every val row (docs/long-runs.md).
- ``cpu``: as ``long``, with the recipe chosen on validation for a small backbone on a CPU:
  prompts with the item token before its title, ``direct``, lr 2e-3 (docs/learning.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from stages.evaluate.config import EvaluateConfig
from stages.launch import Resources
from stages.llm.config import FinetuneConfig, PromptsConfig
from stages.llm.profiles import profile as finetune_profile
from stages.seqrec.chosen import CHOSEN
from stages.seqrec.config import PretrainConfig

PROFILES = ("smoke", "quick", "paper", "long", "cpu")

# Stage-1 training for the paper profile per dataset domain: the settings chosen on validation,
# the same table ``llara pretrain`` uses (stages/seqrec/chosen.py). Other domains use the defaults.
PAPER_PRETRAIN: dict[str, tuple[PretrainConfig, dict[str, dict]]] = CHOSEN


@dataclass(frozen=True)
class PipelineProfile:
    name: str
    """smoke, quick, paper, long or cpu."""
    pretrain: PretrainConfig
    """Recommender training (model and seed are filled in per row)."""
    prompts: PromptsConfig
    """Prompt materialization (the backbone is filled in)."""
    finetune: FinetuneConfig
    """LLM fine-tuning (schedule and seed are filled in per row)."""
    evaluate: EvaluateConfig
    """LLM evaluation (mode, row name and seed are filled in per row)."""
    eval_modes: tuple[str, ...]
    """Evaluation modes run for every LLM row: scoring (ours) and/or generation (paper parity)."""
    pretrain_settings: dict[str, dict] = field(default_factory=dict)
    """One recommender's own ``PretrainConfig`` values over ``pretrain`` (model -> field -> value)."""
    resources: Resources = field(default_factory=Resources)
    """Where fine-tuning runs (processes per node...); CLI options and flow parameters override it."""
    zero_shot_val: bool = True
    """Also score the backbone zero-shot on the validation rows: the level a fine-tune's validation
    curve has to leave (the report's learning-curve figures draw it, in every profile, so that a
    validation curve is never read against a test value)."""

    def pretrain_for(self, model: str, seed: int, **overrides: object) -> PretrainConfig:
        """The recommender config of one (model, seed) row."""
        own = self.pretrain_settings.get(model, {})
        return replace(self.pretrain, model=model, seed=seed, **{**own, **overrides})


def pipeline_profile(
    name: str, domain: str, backbone: str | None = None, max_steps: int | None = None
) -> PipelineProfile:
    """The profile's stage configs for a dataset domain; ``backbone`` overrides the profile's LLM and
    ``max_steps`` its fine-tuning budget T (the ``long`` profile spaces its validations over T)."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    finetune = finetune_profile(name, domain, **({"max_steps": max_steps} if max_steps else {}))
    if backbone:
        finetune = replace(finetune, backbone=backbone)
    if name == "smoke":
        return PipelineProfile(
            name,
            PretrainConfig(epochs=2, patience=1, progress=False),
            PromptsConfig(backbone=finetune.backbone, max_eval_rows=8),
            finetune,
            EvaluateConfig(
                backbone=finetune.backbone, max_rows=8, batch_size=4, max_new_tokens=8, device="cpu"
            ),
            ("scoring", "generation"),
        )
    if name == "quick":
        return PipelineProfile(
            name,
            PretrainConfig(epochs=12, patience=3),
            PromptsConfig(backbone=finetune.backbone),
            finetune,
            EvaluateConfig(backbone=finetune.backbone, batch_size=8, device="cpu"),
            ("scoring",),
        )
    pretrain, settings = PAPER_PRETRAIN.get(domain, (PretrainConfig(), {}))
    if name in ("long", "cpu"):  # the paper's stage 1; the LLM stages on the CPU
        item_order = "token-first" if name == "cpu" else "title-first"
        return PipelineProfile(
            name,
            pretrain,
            PromptsConfig(backbone=finetune.backbone, item_order=item_order),
            finetune,
            EvaluateConfig(backbone=finetune.backbone, batch_size=8, device="cpu"),
            ("scoring", "generation"),
            settings,
        )
    return PipelineProfile(
        name,
        pretrain,
        PromptsConfig(backbone=finetune.backbone),
        finetune,
        EvaluateConfig(backbone=finetune.backbone, batch_size=16),
        ("scoring", "generation"),
        settings,
    )
