"""The evaluate stage on several processes: rows sharded by batch, merged into the one-process result.

Each rank forms the batches one process would (``batches_by_length`` with the mode's prompt batch
size) and takes every ``world``-th of them, so every prompt is scored or generated in exactly the
batch, with exactly the padding, it has in a one-process run. The parent merges the ranks'
predictions back into row order and computes the metrics from the merged per-row outcomes with the
evaluators' own functions: the same predictions and the same metrics as one process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stages.evaluate import stage
from stages.evaluate.rows import EvalRow, batches_by_length, generation_metrics
from stages.launch import Resources, launch
from stages.metrics import bootstrap, ranking_report
from stages.process import available_cores

POSITION = "_position"  # a row's index in its group, to merge the shards back into row order


def prompt_batch_size(config: stage.EvaluateConfig) -> int:
    """Prompts per batch as ``stage.evaluate_rows`` runs the mode (the unit a rank takes)."""
    return max(1, config.batch_size // 2) if config.mode == "scoring" else config.batch_size


def rank_positions(tokenizer, rows: list[EvalRow], batch: int, rank: int, world: int) -> list[int]:
    """Row indices of ``rank``'s batches: every ``world``-th of one process's length-sorted batches.

    They are in length order, so the rank's own ``batches_by_length`` re-forms the same batches.
    """
    return [i for b in batches_by_length(tokenizer, rows, batch)[rank::world] for i in b]


def run_rank(
    config: stage.EvaluateConfig,
    inputs: dict[str, Path],
    out_dir: Path,
    prompt_mode: str,
    groups: list[list[EvalRow]],
) -> dict:
    """One rank (under torchrun): evaluate this rank's rows of every group into ``out_dir``."""
    import torch

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if torch.cuda.is_available():  # "cuda" is then this rank's own device
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not config.threads:  # the node's cores, shared among its ranks
        ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        config = replace(config, threads=max(1, available_cores() // ranks_here))
    model, tokenizer, embed = stage._load(config, inputs, prompt_mode)
    for g, rows in enumerate(groups):
        mine = rank_positions(tokenizer, rows, prompt_batch_size(config), rank, world)
        table = stage.evaluate_rows(model, tokenizer, [rows[i] for i in mine], embed, config).predictions
        table = table.append_column(POSITION, pa.array(mine, type=pa.int64()))
        pq.write_table(table, Path(out_dir) / f"group{g}-rank{rank}.parquet")
    return {}


def merged_metrics(predictions: pa.Table, mode: str, seed: int) -> dict:
    """The evaluators' metrics from per-row outcomes (``scoring_metrics`` ranks by the same rule)."""
    if mode == "scoring":
        rank = np.asarray(predictions.column("rank").to_numpy(), dtype=np.int64)
        return {"valid_ratio": bootstrap(np.ones(len(rank)), seed), **ranking_report(rank, seed)}
    valid = np.asarray(predictions.column("valid").to_pylist(), dtype=bool)
    correct = np.asarray(predictions.column("correct").to_pylist(), dtype=bool)
    return generation_metrics(valid, correct, seed)


def evaluate_groups(
    config: stage.EvaluateConfig,
    inputs: dict[str, Path],
    prompt_mode: str,
    groups: list[list[EvalRow]],
    resources: Resources,
    logger: logging.Logger | logging.LoggerAdapter,
    scratch: Path,
) -> list[stage.EvalOutput]:
    """``stage._evaluate_local`` on ``resources``: the ranks' predictions merged in row order."""
    launch(run_rank, config, inputs, scratch, resources, logger, prompt_mode=prompt_mode, groups=groups)
    outputs = []
    for g in range(len(groups)):
        parts = [pq.read_table(p) for p in sorted(scratch.glob(f"group{g}-rank*.parquet"))]
        table = pa.concat_tables(parts).sort_by(POSITION)
        if table.column(POSITION).to_pylist() != list(range(len(groups[g]))):
            raise RuntimeError(f"group {g}: the ranks' rows do not cover the group exactly once")
        table = table.drop_columns([POSITION])
        outputs.append(stage.EvalOutput(table, merged_metrics(table, config.mode, config.seed)))
    return outputs


def run_sharded(
    config: stage.EvaluateConfig,
    inputs: dict[str, Path],
    out_dir: Path,
    resources: Resources,
    logger: logging.Logger | logging.LoggerAdapter,
) -> dict:
    """``stage.run`` with the model's rows evaluated on ``resources`` (an endpoint row stays here)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="llara-shards-") as scratch:
        groups = partial(evaluate_groups, resources=resources, logger=logger, scratch=Path(scratch))
        return stage.run(config, inputs, out_dir, evaluate_groups=groups)
