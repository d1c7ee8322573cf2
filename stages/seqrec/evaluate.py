"""Score the frozen 20 candidates of a val/test split and reduce them to HR@k / NDCG@k with CIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from stages.metrics import Estimate, rank_of_target, ranking_report
from stages.seqrec.data import Split


@torch.no_grad()
def score_candidates(model: nn.Module, split: Split, batch_size: int = 1024) -> np.ndarray:
    """Model logits of each row's candidates, (rows, 20) float32, in the stored candidate order."""
    if split.candidates is None:
        raise ValueError("this split has no candidates (train rows are scored against the catalogue)")
    was_training = model.training
    model.eval()
    out = []
    for s in range(0, len(split), batch_size):
        logits = model(split.history[s : s + batch_size], split.lengths[s : s + batch_size])  # (b, n_items)
        out.append(logits.gather(1, split.candidates[s : s + batch_size]))  # (b, 20)
    model.train(was_training)
    return torch.cat(out).float().numpy()


def ranks(split: Split, scores: np.ndarray) -> np.ndarray:
    """0-based rank of the target among the candidates (ties count against the target)."""
    target_index = (split.candidates == split.target[:, None]).int().argmax(dim=1).numpy()
    return rank_of_target(scores, target_index)


def evaluate(
    model: nn.Module, split: Split, seed: int = 0
) -> tuple[dict[str, Estimate], np.ndarray, np.ndarray]:
    """(report, scores, rank) for one split; the bootstrap resamples users with ``seed``."""
    scores = score_candidates(model, split)
    rank = ranks(split, scores)
    return ranking_report(rank, seed), scores, rank


def write_scores(path: Path, split: Split, scores: np.ndarray, rank: np.ndarray) -> None:
    """Per-row scores as Parquet: user_id, target, candidates, scores, rank."""
    table = pa.table({
        "user_id": pa.array(split.user_id, pa.int32()),
        "target": pa.array(split.target.numpy().astype(np.int32), pa.int32()),
        "candidates": pa.array(split.candidates.numpy().astype(np.int32).tolist(), pa.list_(pa.int32())),
        "scores": pa.array(scores.astype(np.float32).tolist(), pa.list_(pa.float32())),
        "rank": pa.array(rank.astype(np.int32), pa.int32()),
    })
    pq.write_table(table, path)
