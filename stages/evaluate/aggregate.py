"""Result rows in long form (the contract with the report stage) and their multi-seed aggregation.

One row per (dataset, row name, mode, metric, split, backbone, seed). Columns:
``dataset``, ``row`` (GRU4Rec, SASRec, zero-shot, TALLRec, LLaRA(SASRec), an ablation name...),
``mode`` (generation / scoring / endpoint / sr), ``metric`` (valid_ratio, hr@1, hr@1|valid, hr@5,
ndcg@5), ``mean``, ``ci_low``, ``ci_high`` (95 % bootstrap over users), ``n`` (rows), ``seed``,
``backbone``, ``split``.

``aggregate_seeds`` reduces several seeds of the same row to one: ``mean`` is the mean over seeds of
the per-seed means, ``seed_std`` / ``seed_min`` / ``seed_max`` their spread (training-seed variation),
``ci_low`` / ``ci_high`` the mean over seeds of the per-seed bootstrap bounds (test-set sampling
variation, which a few seeds do not shrink), ``seeds`` the number of seeds and ``seed_list`` which.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl
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
    """Long-form result rows of one evaluation, one per metric; pyarrow only, so it runs without polars."""
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


KEYS = ("dataset", "row", "mode", "metric", "split", "backbone")
# The polars view of the one column list, ``RESULT_COLUMNS``.
RESULT_SCHEMA = dict(pl.from_arrow(RESULT_COLUMNS.empty_table()).schema)


def result_rows(metrics: dict[str, Estimate], **labels: str | int) -> pl.DataFrame:
    """``result_table`` as a polars frame (labels: dataset, row, mode, split...)."""
    return pl.from_arrow(result_table(metrics, **labels))


def aggregate_seeds(frames: Iterable[pl.DataFrame] | pl.DataFrame) -> pl.DataFrame:
    """Mean and spread over seeds per (dataset, row, mode, metric, split, backbone); see module doc."""
    df = frames if isinstance(frames, pl.DataFrame) else pl.concat(list(frames), how="diagonal_relaxed")
    if "seed" not in df.columns:
        df = df.with_columns(pl.lit(0, dtype=pl.Int64).alias("seed"))
    out = (
        df.group_by(list(KEYS), maintain_order=True)
        .agg(
            pl.col("mean").mean().alias("mean_over_seeds"),
            pl.col("mean").std(ddof=1).fill_null(0.0).alias("seed_std"),
            pl.col("mean").min().alias("seed_min"),
            pl.col("mean").max().alias("seed_max"),
            pl.col("ci_low").mean(),
            pl.col("ci_high").mean(),
            pl.col("n").max(),
            pl.col("seed").n_unique().alias("seeds"),
            pl.col("seed").unique().sort().cast(pl.Utf8).str.join(",").alias("seed_list"),
        )
        .rename({"mean_over_seeds": "mean"})
    )
    return out.with_columns(pl.col("seed_std").fill_nan(0.0)).select(
        *KEYS[:4],
        "mean",
        "ci_low",
        "ci_high",
        "n",
        "seeds",
        "seed_std",
        "seed_min",
        "seed_max",
        "seed_list",
        *KEYS[4:],
    )


def spread(values: Iterable[float]) -> dict[str, float]:
    """Mean, sample std, min and max of per-seed values (std 0 for a single seed)."""
    arr = np.asarray(list(values), dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "min": float(arr.min()), "max": float(arr.max())}
