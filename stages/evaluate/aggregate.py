"""Result rows in long form (the contract with the report stage) and their multi-seed aggregation.

One row per (dataset, row name, mode, metric, split, backbone, seed). Columns:
``dataset``, ``row`` (GRU4Rec, SASRec, zero-shot, TALLRec, LLaRA(SASRec), an ablation name...),
``mode`` (generation / scoring / endpoint / sr), ``metric`` (valid_ratio, hr@1, hr@1|valid, hr@5,
ndcg@5), ``mean``, ``ci_low``, ``ci_high`` (95 % bootstrap over users), ``n`` (rows), ``seed``,
``backbone``, ``split``. ``stages.report.seeds`` aggregates them over seeds.

numpy and pyarrow only: the evaluate stage imports this, and runs where polars is not installed
(``flows.offline_rows`` on a GPU machine's image).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from stages.metrics import Estimate, bootstrap, hit_at_k, ndcg_at_k

RESULT_COLUMNS = pa.schema(
    [
        ("dataset", pa.string()),
        ("row", pa.string()),
        ("mode", pa.string()),
        ("metric", pa.string()),
        ("mean", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("n", pa.int64()),
        ("seed", pa.int64()),
        ("backbone", pa.string()),
        ("split", pa.string()),
    ]
)
"""The long-form result columns (the module docstring says what each holds)."""


def result_table(
    metrics: dict[str, Estimate],
    *,
    dataset: str,
    row: str,
    mode: str,
    split: str,
    backbone: str,
    seed: int = 0,
) -> pa.Table:
    """Long-form result rows of one evaluation, one per metric."""
    labels = {
        "dataset": dataset,
        "row": row,
        "mode": mode,
        "split": split,
        "backbone": backbone,
        "seed": seed,
    }
    records = [
        {
            **labels,
            "metric": name,
            "mean": float(e.mean),
            "ci_low": float(e.low),
            "ci_high": float(e.high),
            "n": int(e.n),
        }
        for name, e in metrics.items()
    ]
    return pa.Table.from_pylist(records, schema=RESULT_COLUMNS)


def template_mean_metrics(predictions: pa.Table, mode: str, seed: int = 0) -> dict[str, Estimate]:
    """Metrics averaged over templates: each user's outcomes are averaged over its rows (one per
    template), then bootstrapped over users. ``predictions``: the evaluate stage's table."""
    users = np.asarray(predictions.column("user_id").to_numpy())
    if mode == "scoring":
        rank = np.asarray(predictions.column("rank").to_numpy(), dtype=np.int64)
        outcomes = {
            "valid_ratio": np.ones(len(rank)),
            "hr@1": hit_at_k(rank, 1),
            "hr@5": hit_at_k(rank, 5),
            "ndcg@5": ndcg_at_k(rank, 5),
        }
    else:
        outcomes = {
            "valid_ratio": np.asarray(predictions.column("valid").to_pylist(), dtype=np.float64),
            "hr@1": np.asarray(predictions.column("correct").to_pylist(), dtype=np.float64),
        }
    order, inverse = np.unique(users, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(order))
    return {
        name: bootstrap(np.bincount(inverse, weights=values, minlength=len(order)) / counts, seed)
        for name, values in outcomes.items()
    }


def estimates_dict(estimates: dict[str, Estimate]) -> dict[str, dict[str, float | int]]:
    return {name: e.as_dict() for name, e in estimates.items()}
