"""Ranking metrics over a fixed candidate list, with bootstrap confidence intervals over users.

Every evaluator (the sequential recommenders, the LLM's candidate scoring and its generation
mode) reduces a row to the 0-based rank of the true item among its candidates, or to a per-row
0/1 outcome, and reports the mean with a 95 % percentile bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 1000
PROBES: tuple[str, ...] = ("val_hr1", "val_mrr", "val_nll", "fit_hr1", "fit_mrr", "fit_nll")
"""The learning probes of a fine-tune's validation point (``candidate_probes`` on the validation rows
and on the fit sample of training rows; ``stages.llm.validation``), in display order."""


@dataclass(frozen=True)
class Estimate:
    """A metric's mean over rows with a percentile bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "ci_low": self.low, "ci_high": self.high, "n": self.n}

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"


def rank_of_target(scores: np.ndarray, target_index: np.ndarray) -> np.ndarray:
    """0-based rank of the target among each row's candidates; ties count against the target.

    scores: (rows, candidates); target_index: (rows,) position of the true item in each row.
    """
    target_scores = scores[np.arange(len(scores)), target_index][:, None]
    return (scores >= target_scores).sum(axis=1) - 1


def hit_at_k(rank: np.ndarray, k: int) -> np.ndarray:
    return (rank < k).astype(np.float64)


def ndcg_at_k(rank: np.ndarray, k: int) -> np.ndarray:
    """With one relevant item, NDCG@k is 1/log2(rank + 2) inside the top k, else 0."""
    return np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)


def bootstrap(values: np.ndarray, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> Estimate:
    """Mean of per-row values with a 95 % percentile bootstrap CI (rows resampled with replacement)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Estimate(float(values.mean()), float(low), float(high), len(values))


def ranking_report(rank: np.ndarray, seed: int = 0) -> dict[str, Estimate]:
    """HR@1 (= HitRatio@1 when every row is valid), HR@5 and NDCG@5 with CIs."""
    return {
        "hr@1": bootstrap(hit_at_k(rank, 1), seed),
        "hr@5": bootstrap(hit_at_k(rank, 5), seed),
        "ndcg@5": bootstrap(ndcg_at_k(rank, 5), seed),
    }


def candidate_probes(scores: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: hit at 1, reciprocal rank and candidate NLL, from ``scores`` (rows, candidates).

    The NLL is minus the log-softmax of the target's score over the row's candidates (a model that
    scores them all alike gets ln(candidates)); ranks count ties against the target, as the
    evaluate stage does.
    """
    rank = rank_of_target(scores, target)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    nll = -log_softmax[np.arange(len(scores)), target]
    return (rank == 0).astype(np.float64), 1.0 / (rank + 1.0), nll
