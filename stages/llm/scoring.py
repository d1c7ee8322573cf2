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

Two scorers give the same scores (to float tolerance; tests compare both with a brute-force full
forward pass of prompt + answer per candidate):

- ``masked`` (default): one forward per group of rows over ``[prompt | answer 1 | ... | answer 20]``
  under a 4-D attention mask: the prompt is causal, every answer attends to the real prompt tokens
  and to its own earlier tokens only, and its positions continue from the prompt's length, so each
  answer sees exactly the sequence prompt + answer. No KV cache, nothing is copied per candidate;
  logits are kept only at the positions that predict an answer token. Rows are grouped (sorted by
  length) so a forward holds at most ``max_tokens_per_forward`` tokens; a row whose answers alone
  overflow the bound is split into groups of candidates, each forward repeating the prompt.
- ``cache_copy`` (the previous scorer, kept for comparison): the prompt runs once with
  ``use_cache``, its KV cache is copied (``index_select``) onto every continuation of a chunk of
  ``continuation_batch_size`` candidates.

Measured on the CPU (``benchmarks/bench_eval.py``, SmolLM2-135M, fp32, 2 cores): masked 2.5x the
rows/s of cache-copy at 0.37x its peak RSS (1.6 vs 4.4 GB), hence the default.
Log-probabilities are taken in fp32 (``logsumexp`` of fp32 logits) and summed in fp64, whatever
the model's dtype. The prediction is the argmax; ValidRatio is 1 by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from transformers import DynamicCache

from stages.llm.assembly import shared_encoder
from stages.llm.rows import (
    EmbedFn,
    EvalRow,
    batches_by_length,
    encode_left_padded,
    identity_embed_fn,
    model_device,
    pad_id,
    prompt_token_ids,
    scoring_metrics,
    with_progress,
)
from stages.metrics import Estimate, rank_of_target

LOGSUMEXP_ROWS = 128
"""Logit rows per fp32 logsumexp: 128 x a 49k vocabulary is 25 MB, reused by malloc."""


@dataclass(frozen=True)
class ScoringConfig:
    """How candidates are scored."""

    method: Literal["masked", "cache_copy"] = "masked"
    """``masked``: prompt and all answers in one forward under a 4-D mask; ``cache_copy``: the
    previous scorer (prompt cache copied per continuation), kept for comparison."""
    max_tokens_per_forward: int = 8192
    """``masked``: most (padded) tokens in one forward; bounds activations and the kept logits
    (tokens x vocabulary). One row's prompt plus one answer always runs, even if longer."""
    prompt_batch_size: int = 4
    """``cache_copy``: prompts run together in one forward pass (left-padded)."""
    continuation_batch_size: int = 80
    """``cache_copy``: (prompt, candidate) continuations run together against the shared prompt cache."""
    add_special_tokens: bool = True
    """Let the tokenizer add its BOS etc. to the prompt (must match training)."""


def candidate_answer_ids(tokenizer, row: EvalRow, add_special_tokens: bool = True) -> list[list[int]]:
    """Each candidate's answer tokens as training labels them after this row's prompt tokens.

    Encodes prompt + answer jointly for every candidate (``stages.llm.templates.encode``) and keeps
    the tokens after the prompt; the prompt part must come out as the row's own prompt tokens,
    otherwise the shared prompt would score another sequence than training saw.
    """
    # The 20 joint sequences share all but their last segment: assembled from cached pieces once
    # the first row showed that this gives the tokenizer's own ids (stages.llm.assembly).
    prompts, titles = [row.prompt] * len(row.candidate_titles), list(row.candidate_titles)
    encoded = shared_encoder(tokenizer).encode_checked(prompts, titles)
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


Group = list[tuple[int, list[int]]]
"""One forward of the masked scorer: (row index, the candidate indices it scores) per sequence."""


def masked_groups(
    prompt_lengths: Sequence[int], answers: Sequence[Sequence[Sequence[int]]], budget: int
) -> list[Group]:
    """Rows (shortest prompt first) packed into forwards of at most ``budget`` padded tokens.

    A sequence is a row's prompt followed by its answers minus their last tokens (the last token is
    only predicted); a forward pads every sequence to its longest prompt plus its longest answers.
    A row whose sequence alone exceeds the budget is split into groups of candidates.
    """
    items: list[tuple[int, list[int], int, int]] = []  # (row, candidates, prompt tokens, answer tokens)
    for row in sorted(range(len(prompt_lengths)), key=lambda r: prompt_lengths[r]):
        chunk: list[int] = []
        width = 0
        for cand, answer in enumerate(answers[row]):
            if chunk and prompt_lengths[row] + width + len(answer) - 1 > budget:
                items.append((row, chunk, prompt_lengths[row], width))
                chunk, width = [], 0
            chunk.append(cand)
            width += len(answer) - 1
        items.append((row, chunk, prompt_lengths[row], width))
    groups: list[Group] = []
    group: Group = []
    prompt_width = answer_width = 0
    for row, cands, prompt_len, answer_len in items:
        wide_prompt, wide_answer = max(prompt_width, prompt_len), max(answer_width, answer_len)
        if group and (len(group) + 1) * (wide_prompt + wide_answer) > budget:
            groups.append(group)
            group, wide_prompt, wide_answer = [], prompt_len, answer_len
        group.append((row, cands))
        prompt_width, answer_width = wide_prompt, wide_answer
    if group:
        groups.append(group)
    return groups


@dataclass(frozen=True)
class MaskedLayout:
    """One group's packed sequences ``[left-padded prompt | answers minus last token | padding]``."""

    ids: np.ndarray
    """(N, T + S) token ids."""
    positions: np.ndarray
    """(N, T + S) position ids: the prompt's from 0, each answer's from the prompt's length."""
    segment: np.ndarray
    """(N, T + S) -1: real prompt token, c >= 0: answer of candidate c, -2: padding."""
    prompt_width: int
    """T: columns of the (left-padded) prompt part."""
    targets: np.ndarray
    """(M, 5) per scored token: sequence, kept logit column (0 = column T - 1), token, row, candidate."""


def masked_layout(
    prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[Sequence[int]]], group: Group, pad: int
) -> MaskedLayout:
    """Pack a group's rows; the last token of an answer is only predicted, never fed."""
    width_p = max(len(prompts[r]) for r, _ in group)  # T
    width_a = max(sum(len(answers[r][c]) - 1 for c in cands) for r, cands in group)  # S
    shape = (len(group), width_p + width_a)
    ids = np.full(shape, pad, dtype=np.int64)
    positions = np.zeros(shape, dtype=np.int64)
    segment = np.full(shape, -2, dtype=np.int64)
    targets = []
    for i, (r, cands) in enumerate(group):
        prompt = prompts[r]
        ids[i, width_p - len(prompt) : width_p] = prompt
        positions[i, width_p - len(prompt) : width_p] = np.arange(len(prompt))
        segment[i, width_p - len(prompt) : width_p] = -1
        start = width_p  # first column of this answer
        for c in cands:
            answer = answers[r][c]
            end = start + len(answer) - 1
            ids[i, start:end] = answer[:-1]
            positions[i, start:end] = np.arange(len(prompt), len(prompt) + end - start)
            segment[i, start:end] = c
            # Kept logits start at column T - 1 (the prompt's last token predicts answer[0]);
            # answer[k], k >= 1, is predicted by column start + k - 1, kept column start + k - T.
            targets.extend((i, 0 if k == 0 else start + k - width_p, t, r, c) for k, t in enumerate(answer))
            start = end
    return MaskedLayout(ids, positions, segment, width_p, np.array(targets, dtype=np.int64).reshape(-1, 5))


def attention_mask_4d(segment: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(N, 1, W, W) additive mask from ``segment`` (N, W): a token sees the real prompt tokens and
    its own answer's tokens up to itself; padding sees only itself (no row is fully masked)."""
    width = segment.shape[1]
    causal = torch.ones((width, width), dtype=torch.bool, device=segment.device).tril()  # (W, W)
    diagonal = torch.eye(width, dtype=torch.bool, device=segment.device)
    same = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0)  # (N, W, W)
    allowed = causal & ((segment == -1)[:, None, :] | same | diagonal)  # (N, W, W)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segment.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]  # sdpa and eager both add it


def _masked_forward(
    model: torch.nn.Module, embed_fn: EmbedFn, rows: Sequence[EvalRow], layout: MaskedLayout, group: Group
) -> torch.Tensor:
    """(M,) fp32 log-probability of every target token of the layout."""
    device = model_device(model)
    table = model.get_input_embeddings()
    ids = torch.from_numpy(layout.ids).to(device)  # (N, W)
    width_p = layout.prompt_width
    prompt_embeds = embed_fn(ids[:, :width_p], [rows[r] for r, _ in group])  # (N, T, d)
    seq, col, token = torch.from_numpy(layout.targets[:, :3].T.copy()).to(device)  # 3 x (M,)
    # Logits only where a target is predicted: not over the padding after short answers
    at = col + width_p - 1  # (M,) the column that predicts each target
    keep = torch.zeros(ids.shape, dtype=torch.bool, device=device)  # (N, W)
    keep[seq, at] = True
    out = model(
        inputs_embeds=torch.cat([prompt_embeds, table(ids[:, width_p:])], dim=1),  # (N, W, d)
        attention_mask=attention_mask_4d(torch.from_numpy(layout.segment).to(device), table.weight.dtype),
        position_ids=torch.from_numpy(layout.positions).to(device),
        use_cache=False,
        logits_to_keep=keep,
    )
    logits = out.logits  # (P, V): the kept positions in row-major order
    kept = (keep.flatten().cumsum(0) - 1).view(keep.shape)[seq, at]  # (M,) row of logits
    picked = logits[kept, token].float()  # (M,)
    # fp32 whatever the model's dtype, a slice at a time: a whole (P, V) fp32 copy is gigabytes of
    # fresh pages per forward (a long run's validations spent 20-28 % of their time in the kernel)
    log_z = torch.cat([torch.logsumexp(part.float(), dim=-1) for part in logits.split(LOGSUMEXP_ROWS)])
    return picked - log_z[kept]  # (M,)


def _score_masked(model, tokenizer, rows, embed_fn, config, sums, counts) -> None:
    prompts = prompt_token_ids(tokenizer, rows, config.add_special_tokens)
    answers = [candidate_answer_ids(tokenizer, r, config.add_special_tokens) for r in rows]
    pad = pad_id(tokenizer)
    groups = masked_groups([len(p) for p in prompts], answers, config.max_tokens_per_forward)
    for group in with_progress(groups, "scoring"):
        layout = masked_layout(prompts, answers, group, pad)
        logp = _masked_forward(model, embed_fn, rows, layout, group).double().cpu().numpy()  # (M,)
        row, cand = layout.targets[:, 3], layout.targets[:, 4]
        np.add.at(sums, (row, cand), logp)
        np.add.at(counts, (row, cand), 1.0)


def _cache_for(
    cache_kv: list[tuple[torch.Tensor, torch.Tensor]], index: torch.Tensor, config
) -> DynamicCache:
    """A fresh cache whose batch row j is prompt row ``index[j]`` (keys/values: (N, heads, T, dim))."""
    return DynamicCache(ddp_cache_data=[(k[index], v[index]) for k, v in cache_kv], config=config)


def _score_cache_copy(model, tokenizer, rows, embed_fn, config, sums, counts) -> None:
    device = model_device(model)
    pad = pad_id(tokenizer)
    n_cands = sums.shape[1]
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
            logp = (logp * cont_mask).double().sum(1).cpu().numpy()  # (N,)
            for j, (b, c) in enumerate(chunk):
                sums[batch[b], c] = logp[j]
                counts[batch[b], c] = len(answers[j])


SCORERS = {"masked": _score_masked, "cache_copy": _score_cache_copy}


@torch.no_grad()
def score_candidates(
    model: torch.nn.Module,
    tokenizer,
    rows: Sequence[EvalRow],
    embed_fn: EmbedFn | None = None,
    config: ScoringConfig = ScoringConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and mean token log-likelihood of every candidate's answer: two (rows, candidates) arrays."""
    if config.method not in SCORERS:
        raise ValueError(f"unknown scoring method {config.method!r}: use {' or '.join(SCORERS)}")
    n_cands = len(rows[0].candidate_ids) if rows else 0
    if any(len(r.candidate_ids) != n_cands for r in rows):
        raise ValueError("every row must have the same number of candidates")
    sums = np.zeros((len(rows), n_cands), dtype=np.float64)
    counts = np.zeros((len(rows), n_cands), dtype=np.float64)
    was_training = model.training
    model.eval()
    try:
        if rows:
            SCORERS[config.method](
                model, tokenizer, rows, embed_fn or identity_embed_fn(model), config, sums, counts
            )
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
