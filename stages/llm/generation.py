"""Generation mode (parity with the paper): greedy decoding, then the substring rule of ``matching``.

Greedy, at most 64 new tokens, minimum 1 new token, no sampling, no repetition penalty, as the
public code's evaluation. Prompts are left-padded in batches and fed as ``inputs_embeds`` (so the
hybrid prompt's projected item embeddings take part); ``generate`` then returns only the new tokens.
The decoded text (special tokens skipped) is stripped and cut to its first line, as the public code
does. By default a row stops generating as soon as its stripped text contains a newline: under
greedy decoding the tokens after it cannot change the first line, so this only saves time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from stages.llm.matching import MatchResult, MatchRule, first_line, match_rows
from stages.llm.rows import (
    EmbedFn,
    EvalRow,
    batches_by_length,
    encode_left_padded,
    generation_metrics,
    identity_embed_fn,
    model_device,
    pad_id,
    with_progress,
)
from stages.metrics import Estimate


@dataclass(frozen=True)
class GenerationConfigEval:
    """How answers are generated and parsed."""

    batch_size: int = 8
    """Prompts per ``generate`` call (left-padded)."""
    max_new_tokens: int = 64
    """Most tokens generated per answer (the public code's ``max_gen_length``)."""
    min_new_tokens: int = 1
    """Fewest tokens generated per answer (the public code's ``min_gen_length``)."""
    stop_at_newline: bool = True
    """Stop a row once its stripped answer has a newline (same first line, less compute)."""
    add_special_tokens: bool = True
    """Let the tokenizer add its BOS etc. to the prompt (must match training)."""
    rule: MatchRule = "paper"
    """Matching rule: ``paper`` (parity) or ``longest`` (non-paper, nested titles resolved)."""


class _NewlineStop(StoppingCriteria):
    """Per-row stop once the decoded answer, leading whitespace stripped, contains a newline."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        # Fed with inputs_embeds only, generate's input_ids hold just the generated tokens (B, new).
        texts = self.tokenizer.batch_decode(input_ids, skip_special_tokens=True)
        return torch.tensor([("\n" in t.lstrip()) for t in texts], dtype=torch.bool, device=input_ids.device)


@torch.no_grad()
def generate_answers(
    model: torch.nn.Module,
    tokenizer,
    rows: Sequence[EvalRow],
    embed_fn: EmbedFn | None = None,
    config: GenerationConfigEval = GenerationConfigEval(),
) -> list[str]:
    """Greedy answers, first line only, in the order of ``rows``."""
    embed_fn = embed_fn or identity_embed_fn(model)
    device = model_device(model)
    pad = pad_id(tokenizer)
    gen_config = GenerationConfig(
        max_new_tokens=config.max_new_tokens,
        min_new_tokens=config.min_new_tokens,
        do_sample=False,
        num_beams=1,
        repetition_penalty=1.0,
        pad_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
    )
    answers: list[str] = [""] * len(rows)
    was_training = model.training
    model.eval()
    try:
        for batch in with_progress(batches_by_length(tokenizer, rows, config.batch_size), "generation"):
            batch_rows = [rows[i] for i in batch]
            ids, mask = encode_left_padded(tokenizer, batch_rows, config.add_special_tokens, device)  # (B, T)
            embeds = embed_fn(ids, batch_rows)  # (B, T, d)
            stops = StoppingCriteriaList([_NewlineStop(tokenizer)]) if config.stop_at_newline else None
            new_tokens = model.generate(
                inputs_embeds=embeds,
                attention_mask=mask,
                generation_config=gen_config,
                stopping_criteria=stops,
            )  # (B, new) — only the generated tokens when no input_ids are given
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for i, text in zip(batch, texts, strict=True):
                answers[i] = first_line(text)
    finally:
        model.train(was_training)
    return answers


@dataclass(frozen=True)
class GenerationResult:
    """Per-row answers, their parse and the summary metrics."""

    outputs: list[str]
    matches: list[MatchResult]
    metrics: dict[str, Estimate]


def evaluate_generation(
    model: torch.nn.Module,
    tokenizer,
    rows: Sequence[EvalRow],
    embed_fn: EmbedFn | None = None,
    config: GenerationConfigEval = GenerationConfigEval(),
    seed: int = 0,
) -> GenerationResult:
    """Generate, match with ``config.rule``, and report ValidRatio, HitRatio@1 and correct/valid."""
    outputs = generate_answers(model, tokenizer, rows, embed_fn, config)
    return score_outputs(outputs, rows, config.rule, seed)


def score_outputs(
    outputs: Sequence[str], rows: Sequence[EvalRow], rule: MatchRule = "paper", seed: int = 0
) -> GenerationResult:
    """Match already generated answers (any source: local model or endpoint) and summarise."""
    matches = match_rows(
        [first_line(o) for o in outputs],
        [r.candidate_titles for r in rows],
        [r.candidate_ids for r in rows],
        [r.target_id for r in rows],
        rule,
    )
    valid = np.array([m.valid for m in matches])
    correct = np.array([m.correct for m in matches])
    return GenerationResult(list(outputs), matches, generation_metrics(valid, correct, seed))
