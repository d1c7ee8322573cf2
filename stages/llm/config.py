"""The LLM stages' configurations (``prompts``, ``finetune``) and the learning-rate schedule.

Nothing here imports torch or transformers: the flows build these configs, and a fully cached
``llara run`` never loads the libraries that compute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

from stages.precision import resolve_precision

SelectionMetric = Literal["scoring_hr1", "generation_hr1", "val_loss"]
TemplateChoice = int | str
"""Which template(s) an evaluation uses: an index, ``"draw"`` (one per row from (seed, row), as the
public code's random choice per batch, but reproducible) or ``"all"`` (every template)."""
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class PromptsConfig:
    """Configuration of the prompt materialization stage."""

    backbone: str = "smollm2-135m"
    """Backbone spec whose tokenizer is used (``hf:DIR``, ``smollm2-135m``, ``tiny-random``)."""
    max_eval_rows: int | None = None
    """Keep only the first N rows of each evaluation split (None: all). For smoke runs."""
    item_order: Literal["title-first", "token-first"] = "title-first"
    """How an item is written: ``title-first`` (LLaRA: ``title [CansEmb]``) or ``token-first``
    (``[CansEmb] title``, a variant: in a causal LM a title's tokens then see its embedding, while
    in LLaRA's order only the tokens after it can)."""


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyperparameters (LLaRA's public values by default)."""

    r: int = 8
    """Rank of the adapters."""
    alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    dropout: float = 0.1
    """Dropout on the adapter input."""
    targets: tuple[str, ...] = field(default=LORA_TARGETS)
    """Names of the linear layers that get adapters."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Configuration of LLaRA fine-tuning (defaults: the public hyperparameters for MovieLens)."""

    NOT_IN_ID: ClassVar[tuple[str, ...]] = ("threads",)

    backbone: str = "smollm2-135m"
    """Backbone spec; must be the one the prompts artifact was built for."""
    schedule: str = "curriculum"
    """Curriculum: curriculum, direct, text, two-stage or llara-official."""
    two_stage_text_fraction: float = 0.5
    """``two-stage``: the fraction of the run's optimizer steps (max_steps or all epochs) trained
    text-only before it turns hybrid, in [0, 1)."""
    epochs: int = 5
    """Passes over the train rows (candidates are redrawn every epoch)."""
    micro_batch: int = 8
    """Rows per process per forward pass."""
    grad_accum: int = 16
    """Micro-batches per process per optimizer step (effective batch = micro * accum * world)."""
    lr: float = 8e-4
    """Peak learning rate; warmup from lr/100 over max_steps/20 steps, cosine down to lr/100."""
    weight_decay: float = 1e-5
    """Adam (L2) weight decay of the projector; LoRA weights get none."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """LoRA rank, alpha, dropout, target layers."""
    projector_lr: float | None = None
    """Peak learning rate of the projector (same schedule); None: ``lr``, as LLaRA (one lr for all)."""
    projector_norm: Literal["none", "layernorm", "token"] = "none"
    """The projector's output: ``none`` (LLaRA's Linear-GELU-Linear), ``layernorm`` (a LayerNorm after
    it) or ``token`` (a LayerNorm whose gain starts at the RMS of the backbone's token embeddings)."""
    user_token: Literal["none", "last-item"] = "none"
    """A method variant (rows named ``LLaRA+user``): ``last-item`` adds the row's last history item,
    through an MLP of its own, to the input at the answer cue (``stages.llm.projector``); ``none``: LLaRA."""
    zero_stage: int | None = None
    """DeepSpeed ZeRO stage; None: 0 on one process (nothing to partition), 2 on several or with offload."""
    offload: bool = False
    """Offload optimizer state (and ZeRO-3 parameters) to CPU memory."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """bf16 mixed precision or fp32; ``auto``: bf16 on a GPU or a CPU with bf16 matrix units
    (``stages.precision``), else fp32. Resolved before the artifact id (``resolved``)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass."""
    length_grouping: bool = True
    """Group rows of similar length into micro-batches (less padding)."""
    pad_to_multiple_of: int = 1
    """Pad each micro-batch's length to a multiple of this (with ``compile``, 1 means 64)."""
    compile: bool = False
    """torch.compile the LoRA model (DeepSpeed's ``engine.compile``); padded lengths bound recompiles."""
    max_train_rows: int | None = None
    """Subsample the train rows (deterministically from the seed); None: all."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (T of the curriculum and the scheduler); None: epochs."""
    val_rows: int | None = None
    """Validation rows scored at each validation (None: all); 0: no validation, the last step is kept."""
    eval_every: int = 0
    """Also validate every N optimizer steps (0: only at each epoch end and after the last step)."""
    selection_metric: SelectionMetric = "scoring_hr1"
    """Metric that selects the kept step: scoring_hr1 (default), generation_hr1 (the paper's), val_loss."""
    fit_rows: int = 64
    """Training rows (a fixed sample, epoch-0 candidates) scored beside validation at each validation,
    the "fit" probe; 0: none."""
    eval_batch_size: int = 8
    """Validation prompts per batch (scoring runs half as many per forward pass)."""
    checkpoint_every: int = 0
    """Write a resumable checkpoint every N optimizer steps (0: never)."""
    seed: int = 0
    """Seed of candidates, batching, templates, curriculum draws, LoRA/projector init and dropout."""
    threads: int = 0
    """torch CPU threads per process; 0: this process's cores, shared among the node's ranks."""

    def resolved(self) -> FinetuneConfig:
        """This config with ``precision: auto`` replaced by what it means on this machine."""
        return replace(self, precision=resolve_precision(self.precision))


def resolve_zero_stage(zero_stage: int | None, world_size: int, offload: bool) -> int:
    """The ZeRO stage a run uses: the configured one, else 0 on one process and 2 otherwise.

    On one process ZeRO only adds work (partition bookkeeping, gradient buckets); offload needs a
    ZeRO stage, so an offloaded single-process run gets 2 as well.
    """
    if zero_stage is not None:
        return zero_stage
    return 0 if world_size == 1 and not offload else 2


def lr_multiplier(step: int, total: int) -> float:
    """LR / peak at an optimizer step: linear warmup from 1/100 over total/20 steps, cosine to 1/100."""
    warmup = max(1, total // 20)
    if step < warmup:
        return 0.01 + 0.99 * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))
