"""The evaluate stage's configuration.

It imports no torch or transformers, so the flows can build it (and a fully cached ``llara run``
can check its artifacts) without loading the libraries that evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Literal

from stages.llm.config import TemplateChoice
from stages.llm.matching import MatchRule
from stages.precision import resolve_precision

Mode = Literal["generation", "scoring"]


@dataclass(frozen=True)
class EvaluateConfig:
    """Configuration of one evaluation run."""

    NOT_IN_ID: ClassVar[tuple[str, ...]] = ("threads",)

    mode: Mode = "generation"
    """``generation`` (greedy + substring rule, the paper's numbers) or ``scoring`` (candidate likelihood)."""
    split: Literal["val", "test"] = "test"
    """Which frozen split of the prompts artifact to evaluate."""
    prompt_mode: Literal["auto", "hybrid", "text"] = "auto"
    """Prompt kind; ``auto``: hybrid for a LLaRA model trained with a projector, text otherwise."""
    template: TemplateChoice = "draw"
    """``draw``: each row's template drawn from (seed, row), as the public code draws one per batch,
    but reproducibly; ``all``: every template, reported per template and as their mean; or an index."""
    backbone: str = "smollm2-135m"
    """Backbone spec; must match the prompts artifact (and the finetune artifact)."""
    row: str = ""
    """Result-row name for the report (``LLaRA(SASRec)``, ``TALLRec``, ``zero-shot``...); empty: derived."""
    seed: int = 0
    """Label of the training seed this run evaluates (for multi-seed aggregation); also the bootstrap seed."""
    batch_size: int = 8
    """Generation: prompts per batch. Scoring, ``cache_copy``: max(1, batch_size // 2) prompts per forward."""
    max_new_tokens: int = 64
    """Generation: most new tokens per answer."""
    scoring_method: Literal["masked", "cache_copy"] = "masked"
    """Scoring: all answers in one forward under a 4-D mask, or the previous prompt-cache copies
    (``stages.llm.scoring``); the same scores to float tolerance."""
    max_tokens_per_forward: int = 8192
    """Scoring, ``masked``: most padded tokens per forward (bounds memory)."""
    continuation_batch_size: int = 80
    """Scoring, ``cache_copy``: (prompt, candidate) continuations per forward against the prompt cache."""
    rule: MatchRule = "paper"
    """Generation: substring rule (``paper`` for parity, ``longest`` is a labelled non-paper variant)."""
    max_rows: int | None = None
    """Evaluate only the first N rows of the split (smoke runs); None: all."""
    endpoint: str | None = None
    """OpenAI-compatible endpoint URL for a zero-shot row (off by default); no local model is loaded."""
    endpoint_model: str = ""
    """The ``model`` field sent to the endpoint."""
    threads: int = 0
    """torch CPU threads; 0: every core this process may use."""
    device: str = "auto"
    """``auto`` (cuda when available), ``cpu`` or ``cuda``."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """bf16 mixed precision (``stages.llm.mixed_precision``: bf16 matmuls, fp32 residual stream and
    log-softmax) or fp32; ``auto``: bf16 on a GPU or a CPU with bf16 matrix units, else fp32.
    Resolved before the artifact id (``resolved``). Log-likelihoods are summed in fp64 either way."""

    def resolved(self) -> EvaluateConfig:
        """This config with ``precision: auto`` replaced by what it means on its device here."""
        if self.endpoint:  # no local model: the precision is the server's
            return self
        return replace(self, precision=resolve_precision(self.precision, self.device))
