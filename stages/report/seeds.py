"""Result rows as polars frames, and their aggregation over training seeds.

``aggregate_seeds`` reduces several seeds of the same row to one: ``mean`` is the mean over seeds of
the per-seed means, ``seed_std`` / ``seed_min`` / ``seed_max`` their spread (training-seed variation),
``ci_low`` / ``ci_high`` the mean over seeds of the per-seed bootstrap bounds (test-set sampling
variation, which a few seeds do not shrink), ``seeds`` the number of seeds and ``seed_list`` which.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from stages.evaluate.aggregate import RESULT_COLUMNS, result_table
from stages.metrics import Estimate

KEYS = ("dataset", "row", "mode", "metric", "split", "backbone")
"""The columns that identify a row across seeds."""
RESULT_SCHEMA = dict(pl.from_arrow(RESULT_COLUMNS.empty_table()).schema)
"""``RESULT_COLUMNS`` as polars types."""


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
