"""Candidate scoring (ours, beyond the paper): rank the 20 candidates by the answer's log-likelihood.

For every row the score of candidate ``c`` is ``log p(answer(c) | prompt)``, summed over the answer's
tokens, where the answer tokens are exactly what training puts under the loss after that prompt:
the joint tokenization of prompt + " " + title + newline, split at the prompt's length, plus EOS
(``candidate_answer_ids``, through ``stages.llm.templates.encode``, the trainer's own encoder).
A title tokenized alone is not the same sequence for SentencePiece tokenizers (Llama-2 writes a
lone leading space as its own token), so answers are never tokenized on their own.
The sum favours short titles a little; the per-token mean is
stored too (``mean_scores``) for analysis, but the ranking uses the sum: it is the likelihood of the
answer the model would have to emit, so it agrees with what greedy generation tries to maximise.

The prompt runs once per row: its KV cache (``past_key_values``) is copied, row by row, onto every
continuation of that row (``index_select`` on the batch dimension of each layer's keys and values,
wrapped in a fresh ``DynamicCache``), so the continuations cost only their own few tokens.
Prompts are left-padded in batches; positions are taken from the attention mask, so the scores
equal a brute-force full forward pass of prompt + answer per candidate to float tolerance
(see tests). The prediction is the argmax; ValidRatio is 1 by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from stages.evaluate.rows import (
    EmbedFn,
    EvalRow,
    batches_by_length,
    encode_left_padded,
    identity_embed_fn,
    model_device,
    pad_id,
    scoring_metrics,
    with_progress,
)
from stages.llm.templates import encode
from stages.metrics import Estimate, rank_of_target


@dataclass(frozen=True)
class ScoringConfig:
    """How candidates are scored."""

    prompt_batch_size: int = 4
    """Prompts run together in one forward pass (left-padded)."""
    continuation_batch_size: int = 80
    """(prompt, candidate) continuations run together against the shared prompt cache."""
    add_special_tokens: bool = True
    """Let the tokenizer add its BOS etc. to the prompt (must match training)."""


def candidate_answer_ids(tokenizer, row: EvalRow, add_special_tokens: bool = True) -> list[list[int]]:
    """Each candidate's answer tokens as training labels them after this row's prompt tokens.

    Encodes prompt + answer jointly for every candidate (``stages.llm.templates.encode``) and keeps
    the tokens after the prompt; the prompt part must come out as the row's own prompt tokens,
    otherwise the shared prompt cache would score another sequence than training saw.
    """
    encoded = encode(tokenizer, [row.prompt] * len(row.candidate_titles), list(row.candidate_titles))
    prompt = list(row.prompt_ids) if row.prompt_ids is not None else None
    if prompt is None:
        prompt = list(tokenizer(row.prompt, add_special_tokens=add_special_tokens)["input_ids"])
    answers = []
    for title, enc in zip(row.candidate_titles, encoded, strict=True):
        if enc.input_ids[: enc.prompt_length] != prompt:
            raise ValueError(
                f"row {row.row_id}: prompt + {title!r} does not tokenize as the prompt's tokens + an answer"
            )
        answers.append(enc.input_ids[enc.prompt_length :])
    return answers


def _cache_for(
    cache_kv: list[tuple[torch.Tensor, torch.Tensor]], index: torch.Tensor, config
) -> DynamicCache:
    """A fresh cache whose batch row j is prompt row ``index[j]`` (keys/values: (N, heads, T, dim))."""
    return DynamicCache(ddp_cache_data=[(k[index], v[index]) for k, v in cache_kv], config=config)


@torch.no_grad()
def score_candidates(
    model: torch.nn.Module,
    tokenizer,
    rows: Sequence[EvalRow],
    embed_fn: EmbedFn | None = None,
    config: ScoringConfig = ScoringConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and mean token log-likelihood of every candidate's answer: two (rows, candidates) arrays."""
    embed_fn = embed_fn or identity_embed_fn(model)
    device = model_device(model)
    pad = pad_id(tokenizer)
    n_cands = len(rows[0].candidate_ids) if rows else 0
    if any(len(r.candidate_ids) != n_cands for r in rows):
        raise ValueError("every row must have the same number of candidates")
    sums = np.zeros((len(rows), n_cands), dtype=np.float64)
    counts = np.zeros((len(rows), n_cands), dtype=np.float64)
    was_training = model.training
    model.eval()
    try:
        for batch in with_progress(batches_by_length(tokenizer, rows, config.prompt_batch_size), "scoring"):
            batch_rows = [rows[i] for i in batch]
            ids, mask = encode_left_padded(tokenizer, batch_rows, config.add_special_tokens, device)  # (B, T)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
            out = model(
                inputs_embeds=embed_fn(ids, batch_rows),
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
            )
            first_logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (B, V)
            cache_kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
            prompt_len = mask.sum(-1)  # (B,) real tokens per prompt

            row_answers = [candidate_answer_ids(tokenizer, r, config.add_special_tokens) for r in batch_rows]
            pairs = [(b, c) for b in range(len(batch)) for c in range(n_cands)]
            for start in range(0, len(pairs), config.continuation_batch_size):
                chunk = pairs[start : start + config.continuation_batch_size]
                answers = [row_answers[b][c] for b, c in chunk]
                width = max(len(a) for a in answers)
                cont = torch.full((len(chunk), width), pad, dtype=torch.long, device=device)  # (N, L)
                cont_mask = torch.zeros((len(chunk), width), dtype=torch.long, device=device)
                for j, a in enumerate(answers):
                    cont[j, : len(a)] = torch.tensor(a, dtype=torch.long)
                    cont_mask[j, : len(a)] = 1
                index = torch.tensor([b for b, _ in chunk], dtype=torch.long, device=device)  # (N,)
                # Token 0 of each answer is predicted by the prompt's last position.
                logp = first_logp[index].gather(1, cont[:, :1])  # (N, 1)
                if width > 1:
                    steps = width - 1
                    step_pos = prompt_len[index, None] + torch.arange(steps, device=device)  # (N, L-1)
                    step_out = model(
                        input_ids=cont[:, :steps],
                        attention_mask=torch.cat([mask[index], cont_mask[:, :steps]], dim=1),
                        position_ids=step_pos,
                        past_key_values=_cache_for(cache_kv, index, model.config),
                        use_cache=True,
                    )
                    step_logp = torch.log_softmax(step_out.logits.float(), dim=-1)  # (N, L-1, V)
                    logp = torch.cat([logp, step_logp.gather(2, cont[:, 1:, None]).squeeze(2)], dim=1)
                logp = (logp * cont_mask).sum(1).double().cpu().numpy()  # (N,)
                for j, (b, c) in enumerate(chunk):
                    sums[batch[b], c] = logp[j]
                    counts[batch[b], c] = len(answers[j])
    finally:
        model.train(was_training)
    return sums, sums / np.maximum(counts, 1)


@dataclass(frozen=True)
class ScoringResult:
    """Per-row candidate scores, the target's rank, the argmax item and the summary metrics."""

    scores: np.ndarray
    """(rows, candidates) summed log-likelihood of each candidate's answer."""
    mean_scores: np.ndarray
    """(rows, candidates) per-token mean log-likelihood (analysis only)."""
    rank: np.ndarray
    """(rows,) 0-based rank of the target by ``scores`` (ties count against the target)."""
    predicted: np.ndarray
    """(rows,) item id of the argmax candidate."""
    metrics: dict[str, Estimate]


def evaluate_scoring(
    model: torch.nn.Module,
    tokenizer,
    rows: Sequence[EvalRow],
    embed_fn: EmbedFn | None = None,
    config: ScoringConfig = ScoringConfig(),
    seed: int = 0,
) -> ScoringResult:
    """Score all candidates and report ValidRatio (=1), HR@1, HR@5 and NDCG@5 with bootstrap CIs."""
    scores, mean_scores = score_candidates(model, tokenizer, rows, embed_fn, config)
    target_index = np.array([r.target_index for r in rows], dtype=np.int64)
    rank = rank_of_target(scores, target_index) if len(rows) else np.zeros(0, dtype=np.int64)
    predicted = np.array([r.candidate_ids[int(i)] for r, i in zip(rows, scores.argmax(1), strict=True)])
    return ScoringResult(scores, mean_scores, rank, predicted, scoring_metrics(scores, target_index, seed))
