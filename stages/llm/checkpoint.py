"""Resumable checkpoints of a finetune run: the engine's state plus the recipe's own.

DeepSpeed saves the LoRA weights, their optimizer and scheduler; the client state adds the data
position, the log so far, the projector and its Adam, and the validation selection; each rank's
RNG states go into a file of their own. The newest ``KEEP_CHECKPOINTS`` are kept, and the best
validation state's file (``stages.llm.selection.BestState``) until a checkpoint names a newer one.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from typing import TYPE_CHECKING

import torch

from stages.llm.rng import rng_state, set_rng_state
from stages.llm.selection import BestState, Selection

if TYPE_CHECKING:
    from stages.llm.finetune import FinetuneRecipe

KEEP_CHECKPOINTS = 2


def save_checkpoint(recipe: FinetuneRecipe) -> None:
    """Write a resumable checkpoint of the recipe at its current step (every rank takes part)."""
    import deepspeed.comm as dist

    assert recipe.checkpoint_dir is not None
    tag = f"step-{recipe.global_step:07d}"
    (recipe.checkpoint_dir / tag).mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), recipe.checkpoint_dir / tag / f"rng_rank{recipe.rank}.pt")
    client = {
        "epoch": recipe.epoch,
        "step_in_epoch": recipe.step_in_epoch,
        "global_step": recipe.global_step,
        "log": recipe.log,
        "config": asdict(recipe.config),
        "projector": recipe.model.projector.state_dict(),
        "projector_optimizer": recipe.projector_optimizer.state_dict(),
        "selection": recipe.selection.state() if recipe.selection else None,
    }
    recipe.engine.save_checkpoint(
        str(recipe.checkpoint_dir), tag=tag, client_state=client, exclude_frozen_parameters=True
    )
    dist.barrier()
    if recipe.rank == 0:
        tags = sorted(p for p in recipe.checkpoint_dir.glob("step-*") if p.is_dir())
        for old in tags[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        keep = recipe.selection.best_step if recipe.selection else None
        BestState.prune(recipe.checkpoint_dir, keep_steps={keep} if keep is not None else set())


def load_checkpoint(recipe: FinetuneRecipe) -> None:
    """Continue the recipe from the latest checkpoint in its ``checkpoint_dir``."""
    assert recipe.checkpoint_dir is not None
    path, client = recipe.engine.load_checkpoint(str(recipe.checkpoint_dir), load_module_strict=False)
    if path is None:
        return
    recipe.epoch, recipe.step_in_epoch = client["epoch"], client["step_in_epoch"]
    recipe.global_step, recipe.log = client["global_step"], client["log"]
    recipe.model.projector.load_state_dict(client["projector"])
    recipe.projector_optimizer.load_state_dict(client["projector_optimizer"])
    if client.get("selection") is not None:
        recipe.selection = Selection.from_state(client["selection"])
        if recipe.selection.best_step is not None and recipe.rank == 0:
            recipe.best = BestState.load(recipe.checkpoint_dir, recipe.selection.best_step)
    tag = (recipe.checkpoint_dir / "latest").read_text().strip()
    set_rng_state(torch.load(recipe.checkpoint_dir / tag / f"rng_rank{recipe.rank}.pt", weights_only=False))
    if recipe.step_in_epoch >= recipe.steps_per_epoch:
        recipe.epoch, recipe.step_in_epoch = recipe.epoch + 1, 0
    if recipe.rank == 0:
        print(f"resumed from {tag} at step {recipe.global_step}", flush=True)
