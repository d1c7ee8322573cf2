"""What the evaluators share: the row type, prompt batching, the embedding hook and metric summaries.

The evaluators work against a generic interface so that they run on any Hugging Face causal LM:

- ``model``: a causal LM (plain, or a PEFT wrapper) whose ``forward`` accepts ``inputs_embeds``,
  ``attention_mask``, ``position_ids`` and ``past_key_values``, and whose ``generate`` accepts
  ``inputs_embeds``;
- ``tokenizer``: its tokenizer (any ``PreTrainedTokenizerBase``);
- ``embed_fn(input_ids, rows) -> inputs_embeds``: maps a left-padded batch of prompt token ids
  ``(B, T)`` and the batch's rows to input embeddings ``(B, T, d)``. The hybrid LLaRA prompt replaces
  the embeddings at its placeholder tokens with ``projector(E[item])`` here; text-only and zero-shot
  prompts use :func:`identity_embed_fn`, a plain embedding-table lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from stages.metrics import Estimate, bootstrap, rank_of_target, ranking_report


@dataclass(frozen=True)
class EvalRow:
    """One evaluation prompt: a user, its prompt text and its 20 candidates."""

    row_id: int
    """Stable id of the prompt row (position in the prompts artifact)."""
    user_id: int
    """The user; the bootstrap resamples users (one row per user on val/test)."""
    prompt: str
    """Full prompt text, up to and including the answer cue; the answer follows it directly."""
    target_id: int
    """Item id of the true next item (one of ``candidate_ids``)."""
    candidate_ids: tuple[int, ...]
    """Item ids of the candidates, in prompt order."""
    candidate_titles: tuple[str, ...]
    """Titles of the candidates, aligned with ``candidate_ids``, as written in the prompt."""
    history_ids: tuple[int, ...] = ()
    """Item ids of the history, oldest first (used by hybrid ``embed_fn``s)."""
    prompt_ids: tuple[int, ...] | None = None
    """The prompt's token ids as training tokenized it (``prompts.parquet``); None: tokenize ``prompt``."""
    template: int = 0
    """Which of the domain's templates the prompt was rendered with."""
    target_answer_ids: tuple[int, ...] | None = None
    """The target's answer tokens after ``prompt_ids`` as training labels them (title, newline, EOS)."""

    @property
    def target_index(self) -> int:
        return self.candidate_ids.index(self.target_id)


EmbedFn = Callable[[torch.Tensor, Sequence[EvalRow]], torch.Tensor]
"""(input_ids (B, T) long, rows) -> inputs_embeds (B, T, d)."""


def identity_embed_fn(model: torch.nn.Module) -> EmbedFn:
    """The model's own token embeddings: the text-only / zero-shot prompt."""
    table = model.get_input_embeddings()

    def embed(input_ids: torch.Tensor, rows: Sequence[EvalRow]) -> torch.Tensor:
        return table(input_ids)

    return embed


def hybrid_embed_fn(llara_model) -> EmbedFn:
    """Hybrid prompt embeddings through ``stages.llm.model.LlaraModel.inputs_embeds``.

    Placeholders are matched to items in row-major order, which left padding does not change.
    """

    def embed(input_ids: torch.Tensor, rows: Sequence[EvalRow]) -> torch.Tensor:
        device = input_ids.device
        history = torch.tensor([h for r in rows for h in r.history_ids], dtype=torch.long, device=device)
        cands = torch.tensor([c for r in rows for c in r.candidate_ids], dtype=torch.long, device=device)
        users = torch.tensor([r.history_ids[-1] if r.history_ids else -1 for r in rows], device=device)
        return llara_model.inputs_embeds(input_ids, history, cands, True, users)

    return embed


def pad_id(tokenizer) -> int:
    """The id used for padding: the tokenizer's pad token, else EOS, else 0."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def prompt_token_ids(tokenizer, rows: Sequence[EvalRow], add_special_tokens: bool) -> list[list[int]]:
    """Each row's prompt tokens: its stored ``prompt_ids``, else the tokenized ``prompt``."""
    missing = [r.prompt for r in rows if r.prompt_ids is None]
    encoded = iter(tokenizer(missing, add_special_tokens=add_special_tokens)["input_ids"] if missing else [])
    return [list(r.prompt_ids) if r.prompt_ids is not None else list(next(encoded)) for r in rows]


def encode_left_padded(
    tokenizer, rows: Sequence[EvalRow], add_special_tokens: bool, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt tokens, left-padded: input_ids (B, T) long and attention_mask (B, T) long."""
    encoded = prompt_token_ids(tokenizer, rows, add_special_tokens)
    width = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), width), pad_id(tokenizer), dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, row in enumerate(encoded):
        if len(row) == 0:
            raise ValueError("empty prompt after tokenization")
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def batches_by_length(tokenizer, rows: Sequence[EvalRow], batch_size: int) -> list[list[int]]:
    """Row indices grouped into batches of similar prompt length (less padding, same results)."""
    lengths = [len(ids) for ids in prompt_token_ids(tokenizer, rows, False)]
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def with_progress(batches: list[list[int]], desc: str) -> Iterator[list[int]]:
    """The batches, counting rows (an evaluation runs for minutes on CPU): a bar on a terminal, else
    a log line every tenth of the rows, and the progress to the Prefect UI (``stages.progress``).
    ``llara --quiet`` hides both."""
    from stages.progress import Progress

    total, done = sum(len(b) for b in batches), 0
    with Progress("evaluate", total, "row", every=max(1, total // 10), description=desc) as progress:
        for batch in batches:
            yield batch
            done += len(batch)
            progress.update(done)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def generation_metrics(valid: np.ndarray, correct: np.ndarray, seed: int = 0) -> dict[str, Estimate]:
    """ValidRatio, HitRatio@1 = correct / total (the published definition) and correct / valid.

    ``hr@1|valid`` is labelled separately: it is *not* the published HitRatio@1; its bootstrap
    resamples the valid users only, and it is NaN when no row is valid.
    """
    valid = np.asarray(valid, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    return {
        "valid_ratio": bootstrap(valid, seed),
        "hr@1": bootstrap(correct, seed),
        "hr@1|valid": bootstrap(correct[valid > 0], seed),
    }


def scoring_metrics(scores: np.ndarray, target_index: np.ndarray, seed: int = 0) -> dict[str, Estimate]:
    """Candidate scoring: every row is valid by construction; HR@1, HR@5, NDCG@5 over the candidates.

    scores: (rows, candidates); target_index: (rows,).
    """
    rank = rank_of_target(scores, target_index)
    report = {"valid_ratio": bootstrap(np.ones(len(rank)), seed)}
    report.update(ranking_report(rank, seed))
    return report
