"""The evaluate stage on several processes: rows sharded by batch, merged into the one-process result.

Each rank forms the forwards one process would (the masked scorer's token-bounded groups, else
``batches_by_length`` with the mode's prompt batch size), takes every ``world``-th of them and
evaluates each on its own, so every prompt is scored or generated in exactly the forward, with
exactly the padding, it has in a one-process run. The parent merges the ranks'
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

from stages.evaluate import evaluate as stage
from stages.launch import Resources, launch
from stages.llm.rows import EvalRow, batches_by_length, generation_metrics
from stages.llm.scoring import candidate_answer_ids, masked_groups, prompt_token_ids
from stages.metrics import bootstrap, ranking_report
from stages.process import available_cores
from stages.progress import Progress

POSITION = "_position"  # a row's index in its group, to merge the shards back into row order


def prompt_batch_size(config: stage.EvaluateConfig) -> int:
    """Prompts per batch as ``stage.evaluate_rows`` runs the mode (the unit a rank takes)."""
    return max(1, config.batch_size // 2) if config.mode == "scoring" else config.batch_size


def work_units(tokenizer, rows: list[EvalRow], config: stage.EvaluateConfig) -> list[list[int]]:
    """Row indices of every forward one process runs over ``rows``, in its order: a rank's unit."""
    if config.mode == "scoring" and config.scoring_method == "masked":
        scoring = stage.scoring_config(config)
        prompts = prompt_token_ids(tokenizer, rows, scoring.add_special_tokens)
        answers = [candidate_answer_ids(tokenizer, r, scoring.add_special_tokens) for r in rows]
        groups = masked_groups([len(p) for p in prompts], answers, scoring.max_tokens_per_forward)
        units: list[list[int]] = []
        for group in groups:
            members = list(dict.fromkeys(r for r, _ in group))
            if units and members[0] in units[-1]:  # a row too long for one forward spans groups
                units[-1].extend(r for r in members if r not in units[-1])
            else:
                units.append(members)
        return units
    return batches_by_length(tokenizer, rows, prompt_batch_size(config))


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
    shares = [work_units(tokenizer, rows, config)[rank::world] for rows in groups]
    total, done = sum(len(units) for units in shares), 0
    every = max(1, total // 10)
    with (
        stage.compute_context(config),
        Progress("evaluate", total, "forward", every, config.mode, show=rank == 0) as progress,
    ):
        for g, (rows, units) in enumerate(zip(groups, shares, strict=True)):
            tables = []
            for unit in units:
                output = stage.evaluate_rows(model, tokenizer, [rows[i] for i in unit], embed, config)
                tables.append(output.predictions)
                done += 1
                progress.update(done)
            if tables:  # else more ranks than forwards: this rank has nothing of this group
                _write_share(tables, units, Path(out_dir) / f"group{g}-rank{rank}.parquet")
    return {}


def _write_share(tables: list[pa.Table], units: list[list[int]], path: Path) -> None:
    mine = [i for unit in units for i in unit]
    table = pa.concat_tables(tables).append_column(POSITION, pa.array(mine, type=pa.int64()))
    pq.write_table(table, path)


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
