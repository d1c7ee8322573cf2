"""Resumable checkpoints of a finetune run: the engine's state plus the recipe's own.

DeepSpeed saves the LoRA weights, their optimizer and scheduler; the client state adds the data
position, the log so far, the projector and its Adam, and the validation selection; each rank's
RNG states go into a file of their own. The newest ``KEEP_CHECKPOINTS`` are kept, and the best
validation state's file (``stages.llm.selection.BestState``) until a checkpoint names a newer one.
Every resume appends its step to ``resumed_at`` (kept in later checkpoints and in ``summary.json``),
so an artifact says where its run was interrupted.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict

import torch

from stages.llm.rng import rng_state, set_rng_state
from stages.llm.selection import BestState, Selection

KEEP_CHECKPOINTS = 2


class Checkpointing:
    """Resumable checkpoints, mixed into ``stages.llm.finetune.FinetuneRecipe`` (its state lives there)."""

    def save_checkpoint(self) -> None:
        """Write a resumable checkpoint of the run at its current step (every rank takes part)."""
        import deepspeed.comm as dist

        assert self.checkpoint_dir is not None
        tag = f"step-{self.global_step:07d}"
        (self.checkpoint_dir / tag).mkdir(parents=True, exist_ok=True)
        torch.save(rng_state(), self.checkpoint_dir / tag / f"rng_rank{self.rank}.pt")
        client = {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "log": self.log,
            "config": asdict(self.config),
            "projector": self.model.projector.state_dict(),
            "projector_optimizer": self.projector_optimizer.state_dict(),
            "selection": self.selection.state() if self.selection else None,
            "resumed_at": self.resumed_at,
        }
        self.engine.save_checkpoint(
            str(self.checkpoint_dir), tag=tag, client_state=client, exclude_frozen_parameters=True
        )
        dist.barrier()
        if self.rank == 0:
            tags = sorted(p for p in self.checkpoint_dir.glob("step-*") if p.is_dir())
            for old in tags[:-KEEP_CHECKPOINTS]:
                shutil.rmtree(old, ignore_errors=True)
            keep = self.selection.best_step if self.selection else None
            BestState.prune(self.checkpoint_dir, keep_steps={keep} if keep is not None else set())

    def load_checkpoint(self) -> None:
        """Continue the run from the latest checkpoint in its ``checkpoint_dir``."""
        assert self.checkpoint_dir is not None
        path, client = self.engine.load_checkpoint(str(self.checkpoint_dir), load_module_strict=False)
        if path is None:
            return
        self.epoch, self.step_in_epoch = client["epoch"], client["step_in_epoch"]
        self.global_step, self.log = client["global_step"], client["log"]
        self.resumed_at = [*client.get("resumed_at", []), self.global_step]
        self.model.projector.load_state_dict(client["projector"])
        self.projector_optimizer.load_state_dict(client["projector_optimizer"])
        if client.get("selection") is not None:
            self.selection = Selection.from_state(client["selection"])
            if self.selection.best_step is not None and self.rank == 0:
                self.best = BestState.load(self.checkpoint_dir, self.selection.best_step)
        tag = (self.checkpoint_dir / "latest").read_text().strip()
        set_rng_state(torch.load(self.checkpoint_dir / tag / f"rng_rank{self.rank}.pt", weights_only=False))
        if self.step_in_epoch >= self.steps_per_epoch:
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
        if self.rank == 0:
            logging.getLogger("llara.finetune").info("resumed from %s at step %d", tag, self.global_step)
