"""The finetune stage on several processes or nodes: the config each rank runs, and where it resumes.

``grad_accum`` is per process (effective batch = micro_batch * grad_accum * world). Ranks take the
step's micro-batches ``index % world == rank``, so a run on ``world`` processes trains on the same
micro-batches, in the same steps, as one process with ``grad_accum * world``: that one-process
config is the artifact's identity, and the world size is a resource, not part of the id. The
artifact's manifest holds that config; its ``summary.json`` says the ``world_size`` it ran on.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from stages.launch import Resources, launch
from stages.llm import finetune as finetune_stage
from stages.llm.config import FinetuneConfig


def one_process_config(config: FinetuneConfig, world: int) -> FinetuneConfig:
    """The one-process config that trains exactly as ``config`` does on ``world`` processes."""
    return replace(config, grad_accum=config.grad_accum * world)


def per_process_config(config: FinetuneConfig, world: int) -> FinetuneConfig:
    """Inverse of ``one_process_config``."""
    if config.grad_accum % world:
        raise ValueError(f"grad_accum {config.grad_accum} does not split over {world} processes")
    return replace(config, grad_accum=config.grad_accum // world)


def checkpoints_for(checkpoint_dir: Path | None, world: int) -> Path | None:
    """DeepSpeed checkpoints are per rank: each world size resumes from its own directory."""
    if checkpoint_dir is None or world == 1:
        return checkpoint_dir
    return Path(checkpoint_dir) / f"world-{world}"


def run_launched(
    config: FinetuneConfig,
    inputs: dict[str, Path],
    out_dir: Path,
    resources: Resources,
    logger: logging.Logger | logging.LoggerAdapter,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> dict | None:
    """``finetune_stage.run`` of the one-process ``config`` on ``resources``; rank 0's summary (node 0).

    torchrun's per-rank logs stay in ``checkpoint_dir/logs`` until the artifact is published.
    """
    world = resources.world_size
    logs = Path(checkpoint_dir) / "logs" if checkpoint_dir is not None else None
    return launch(
        finetune_stage.run,
        per_process_config(config, world),
        inputs,
        out_dir,
        resources,
        logger,
        log_dir=logs,
        checkpoint_dir=checkpoints_for(checkpoint_dir, world),
        resume=resume,
    )
