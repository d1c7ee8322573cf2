"""Stage ``finetune``: LoRA + projector fine-tuning under DeepSpeed ZeRO with the LLaRA curriculum.

Inputs: ``{"prompts": <prompts artifact>, "embeddings": <item-embedding artifact>}``. Output: ``adapter/``
(peft), ``projector.safetensors``, ``token_rows.safetensors``, ``train_log.parquet`` (step, epoch, loss,
hybrid fraction, lr, tokens) and ``summary.json``.

Runs as one process or under ``torchrun`` / ``deepspeed`` (RANK, WORLD_SIZE, LOCAL_RANK) unchanged.
Checkpoints (``checkpoint_dir``) hold the trainable weights, optimizer, scheduler, per-rank RNG
states, the data position and the log so far; ``resume=True`` continues a killed run exactly.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from stages.llm.backbone import load_backbone
from stages.llm.curriculum import Curriculum
from stages.llm.data import PromptData
from stages.llm.deepspeed_config import deepspeed_config, init_distributed, on_gpu
from stages.llm.inputs import load_item_embeddings, read_prompts_info
from stages.llm.model import LlaraModel, LoraSettings, build_llara_model, save_trained, token_rows

NAME = "finetune"
KEEP_CHECKPOINTS = 2


@dataclass(frozen=True)
class FinetuneConfig:
    """Configuration of LLaRA fine-tuning (defaults: the public hyperparameters for MovieLens)."""

    backbone: str = "smollm2-135m"
    """Backbone spec; must be the one the prompts artifact was built for."""
    schedule: str = "curriculum"
    """Curriculum: curriculum, direct, text, two-stage or llara-official."""
    two_stage_text_epochs: int | None = None
    """``two-stage``: text-only epochs first (None: half of the epochs)."""
    epochs: int = 5
    """Passes over the train rows (candidates are redrawn every epoch)."""
    micro_batch: int = 8
    """Rows per process per forward pass."""
    grad_accum: int = 16
    """Micro-batches per process per optimizer step (effective batch = micro * accum * world)."""
    lr: float = 8e-4
    """Peak learning rate; warmup from lr/100 over max_steps/20 steps, cosine down to lr/100."""
    weight_decay: float = 1e-5
    """Adam (L2) weight decay of the projector; LoRA weights get none."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """LoRA rank, alpha, dropout, target layers."""
    zero_stage: int = 2
    """DeepSpeed ZeRO stage (2 default, 3 for large backbones)."""
    offload: bool = False
    """Offload optimizer state (and ZeRO-3 parameters) to CPU memory."""
    precision: str = "auto"
    """auto (bf16 on GPU, fp32 on CPU), bf16 or fp32."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass."""
    length_grouping: bool = True
    """Group rows of similar length into micro-batches (less padding)."""
    pad_to_multiple_of: int = 1
    """Pad each micro-batch's length to a multiple of this."""
    max_train_rows: int | None = None
    """Subsample the train rows (deterministically from the seed); None: all."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (T of the curriculum and the scheduler); None: epochs."""
    val_rows: int | None = 256
    """Validation rows for the final validation loss (template 0); 0 skips it, None: all."""
    checkpoint_every: int = 0
    """Write a resumable checkpoint every N optimizer steps (0: never)."""
    seed: int = 0
    """Seed of candidates, batching, templates, curriculum draws, LoRA/projector init and dropout."""


def lr_multiplier(step: int, total: int) -> float:
    """LR / peak at an optimizer step: linear warmup from 1/100 over total/20 steps, cosine to 1/100."""
    warmup = max(1, total // 20)
    if step < warmup:
        return 0.01 + 0.99 * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))


def _rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.random.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.random.set_rng_state(state["torch"])
    if state["cuda"] is not None:
        torch.cuda.set_rng_state_all(state["cuda"])


class FinetuneRecipe:
    """setup() → train() → save(): one fine-tuning run on this process's rank."""

    def __init__(
        self,
        config: FinetuneConfig,
        prompts_dir: Path,
        embeddings_dir: Path,
        out_dir: Path,
        checkpoint_dir: Path | None = None,
        resume: bool = False,
    ) -> None:
        self.config, self.out_dir = config, Path(out_dir)
        self.prompts_dir, self.embeddings_dir = Path(prompts_dir), Path(embeddings_dir)
        self.checkpoint_dir, self.resume = (Path(checkpoint_dir) if checkpoint_dir else None), resume
        self.log: list[dict] = []
        self.epoch = self.step_in_epoch = self.global_step = 0

    # ----- setup ---------------------------------------------------------------------------

    def setup(self) -> None:
        import deepspeed

        cfg = self.config
        self.rank, self.world, self.local_rank = init_distributed()
        self.device = torch.device(f"cuda:{self.local_rank}") if on_gpu() else torch.device("cpu")
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and on_gpu())
        info = read_prompts_info(self.prompts_dir, backbone=cfg.backbone)
        backbone = load_backbone(cfg.backbone)
        items = load_item_embeddings(self.embeddings_dir, n_items=info["n_items"])
        self.model: LlaraModel = build_llara_model(
            backbone, items, cfg.lora, cfg.seed, cfg.gradient_checkpointing
        )
        self.data = PromptData(self.prompts_dir, backbone.tokenizer, cfg.seed, cfg.max_train_rows)
        if items.shape[0] != len(self.data.titles):
            raise ValueError(f"{items.shape[0]} item embeddings for {len(self.data.titles)} items")
        self.micro_per_step = cfg.grad_accum * self.world
        micro_per_epoch = self.data.train_rows // cfg.micro_batch // self.micro_per_step * self.micro_per_step
        self.steps_per_epoch = micro_per_epoch // self.micro_per_step
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"{self.data.train_rows} train rows do not fill one step of "
                f"{cfg.micro_batch * self.micro_per_step} rows"
            )
        self.total_steps = self.steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.curriculum = Curriculum(
            cfg.schedule, self.total_steps, cfg.epochs, micro_per_epoch, cfg.seed, cfg.two_stage_text_epochs
        )
        lora = [
            p for n, p in self.model.named_parameters() if p.requires_grad and not n.startswith("projector.")
        ]
        groups = [
            {"params": lora, "weight_decay": 0.0},
            {"params": list(self.model.projector.parameters()), "weight_decay": cfg.weight_decay},
        ]
        optimizer = torch.optim.Adam(groups, lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, self.total_steps))
        ds = deepspeed_config(cfg.micro_batch, cfg.grad_accum, self.world, cfg.zero_stage, cfg.offload, bf16)
        torch.manual_seed(cfg.seed + 1000 * self.rank)  # dropout stream per rank
        self.engine, _, _, _ = deepspeed.initialize(
            model=self.model, optimizer=optimizer, lr_scheduler=scheduler, config=ds
        )
        if self.resume and self.checkpoint_dir is not None and (self.checkpoint_dir / "latest").is_file():
            self._load_checkpoint()

    # ----- training ------------------------------------------------------------------------

    def _mean_over_ranks(self, value: float) -> float:
        import deepspeed.comm as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(tensor)
        return float(tensor.item()) / self.world

    def train(self) -> None:
        """Run optimizer steps until ``total_steps``, checkpointing every ``checkpoint_every`` steps."""
        cfg = self.config
        self.engine.train()
        while self.global_step < self.total_steps:
            candidates = self.data.epoch_candidates(self.epoch)
            micro = self.data.micro_batches(
                self.epoch, cfg.micro_batch, self.micro_per_step, candidates, cfg.length_grouping
            )
            while self.step_in_epoch < self.steps_per_epoch and self.global_step < self.total_steps:
                start = time.perf_counter()
                losses, hybrids, tokens, padded = [], [], 0, 0
                for a in range(cfg.grad_accum):
                    index = self.step_in_epoch * self.micro_per_step + a * self.world + self.rank
                    hybrid = self.curriculum.is_hybrid(self.global_step, self.epoch, index)
                    template = self.data.template_of(self.epoch, index)
                    batch = self.data.train_batch(
                        micro[index], candidates, template, hybrid, cfg.pad_to_multiple_of
                    ).to(self.device)
                    loss = self.engine(
                        batch.input_ids,
                        batch.attention_mask,
                        batch.labels,
                        batch.history_items,
                        batch.candidate_items,
                        batch.hybrid,
                    )
                    self.engine.backward(loss)
                    self.engine.step()
                    losses.append(loss.detach())  # no host sync per micro-batch
                    hybrids.append(float(hybrid))
                    tokens += batch.real_tokens
                    padded += batch.attention_mask.numel()
                row = {
                    "step": self.global_step,
                    "epoch": self.epoch,
                    "loss": self._mean_over_ranks(float(torch.stack(losses).float().mean())),
                    "hybrid": self._mean_over_ranks(sum(hybrids) / len(hybrids)),
                    "lr": cfg.lr * lr_multiplier(self.global_step, self.total_steps),  # the lr this step used
                    "tokens": int(round(self._mean_over_ranks(tokens) * self.world)),
                    "padded_tokens": int(round(self._mean_over_ranks(padded) * self.world)),
                    "seconds": time.perf_counter() - start,
                }
                self.log.append(row)
                self.step_in_epoch += 1
                self.global_step += 1
                if self.rank == 0:
                    print(
                        f"step {row['step']} loss {row['loss']:.4f} hybrid {row['hybrid']:.2f} "
                        f"lr {row['lr']:.2e} {row['seconds']:.2f}s",
                        flush=True,
                    )
                if (
                    cfg.checkpoint_every
                    and self.global_step % cfg.checkpoint_every == 0
                    and self.checkpoint_dir is not None
                ):
                    self._save_checkpoint()
            if self.step_in_epoch >= self.steps_per_epoch:
                self.epoch, self.step_in_epoch = self.epoch + 1, 0

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        """Mean answer loss on the validation prompts (hybrid unless the schedule is ``text``)."""
        cfg = self.config
        if cfg.val_rows == 0:
            return None
        batches = self.data.eval_batches("val", self.curriculum.eval_hybrid, cfg.micro_batch, 0, cfg.val_rows)
        usable = len(batches) // self.world * self.world
        if usable == 0:
            return None
        self.engine.eval()
        total, count = 0.0, 0
        for batch in batches[self.rank : usable : self.world]:
            batch = batch.to(self.device)
            n = int((batch.labels[:, 1:] != -100).sum())
            loss = self.engine(
                batch.input_ids,
                batch.attention_mask,
                batch.labels,
                batch.history_items,
                batch.candidate_items,
                batch.hybrid,
            )
            total, count = total + float(loss) * n, count + n
        self.engine.train()
        return self._mean_over_ranks(total) / max(1e-9, self._mean_over_ranks(count))

    # ----- checkpoints ---------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        import deepspeed.comm as dist

        assert self.checkpoint_dir is not None
        tag = f"step-{self.global_step:07d}"
        (self.checkpoint_dir / tag).mkdir(parents=True, exist_ok=True)
        torch.save(_rng_state(), self.checkpoint_dir / tag / f"rng_rank{self.rank}.pt")
        client = {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "log": self.log,
            "config": asdict(self.config),
        }
        self.engine.save_checkpoint(
            str(self.checkpoint_dir), tag=tag, client_state=client, exclude_frozen_parameters=True
        )
        dist.barrier()
        if self.rank == 0:
            tags = sorted(p for p in self.checkpoint_dir.glob("step-*") if p.is_dir())
            for old in tags[:-KEEP_CHECKPOINTS]:
                shutil.rmtree(old, ignore_errors=True)

    def _load_checkpoint(self) -> None:
        assert self.checkpoint_dir is not None
        path, client = self.engine.load_checkpoint(str(self.checkpoint_dir), load_module_strict=False)
        if path is None:
            return
        self.epoch, self.step_in_epoch = client["epoch"], client["step_in_epoch"]
        self.global_step, self.log = client["global_step"], client["log"]
        tag = (self.checkpoint_dir / "latest").read_text().strip()
        _set_rng_state(torch.load(self.checkpoint_dir / tag / f"rng_rank{self.rank}.pt", weights_only=False))
        if self.step_in_epoch >= self.steps_per_epoch:
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
        if self.rank == 0:
            print(f"resumed from {tag} at step {self.global_step}", flush=True)

    # ----- output --------------------------------------------------------------------------

    def trainable_state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Trainable tensors by name and special-token rows on every rank (gathered under ZeRO-3)."""
        import deepspeed

        named = [(n, p) for n, p in self.engine.module.named_parameters() if p.requires_grad]
        embedding = self.model.llm.get_input_embeddings().weight
        if self.config.zero_stage == 3:
            with deepspeed.zero.GatheredParameters([p for _, p in named] + [embedding], modifier_rank=None):
                return {n: p.detach().float().cpu().clone() for n, p in named}, token_rows(self.model)
        return {n: p.detach().float().cpu().clone() for n, p in named}, token_rows(self.model)

    def save(self, val_loss: float | None) -> dict:
        """Write the artifact files (rank 0) and return the summary."""
        state, rows = self.trainable_state()
        summary = {
            "dataset": self.data.info.get("dataset"),
            "backbone": self.config.backbone,
            "schedule": self.config.schedule,
            "seed": self.config.seed,
            "steps": self.global_step,
            "epochs": self.config.epochs,
            "world_size": self.world,
            "train_rows": self.data.train_rows,
            "total_steps": self.total_steps,
            "first_loss": self.log[0]["loss"] if self.log else None,
            "last_loss": self.log[-1]["loss"] if self.log else None,
            "hybrid_fraction": float(np.mean([r["hybrid"] for r in self.log])) if self.log else None,
            "val_loss": val_loss,
            "val_hybrid": self.curriculum.eval_hybrid,
            "train_seconds": float(sum(r["seconds"] for r in self.log)),
            "train_tokens": int(sum(r["tokens"] for r in self.log)),
        }
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_trained(self.model, self.out_dir, state, rows)
            columns = ("step", "epoch", "loss", "hybrid", "lr", "tokens", "padded_tokens", "seconds")
            pq.write_table(
                pa.table({c: [r[c] for r in self.log] for c in columns}), self.out_dir / "train_log.parquet"
            )
            (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


def run(
    config: FinetuneConfig,
    inputs: dict[str, Path],
    out_dir: Path,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> dict:
    """Fine-tune on ``inputs["prompts"]`` with ``inputs["embeddings"]``; write the artifact into ``out_dir``.

    ``checkpoint_dir`` (outside the artifact, e.g. ``<store>/checkpoints/<id>``) enables resumable
    checkpoints; without one, a killed run starts over.
    """
    recipe = FinetuneRecipe(config, inputs["prompts"], inputs["embeddings"], out_dir, checkpoint_dir, resume)
    recipe.setup()
    recipe.train()
    return recipe.save(recipe.validation_loss())
