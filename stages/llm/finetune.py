"""Stage ``finetune``: LoRA + projector fine-tuning under DeepSpeed ZeRO with the LLaRA curriculum.

Inputs: ``{"prompts": <prompts artifact>, "embeddings": <item-embedding artifact>}``. Output: ``adapter/``
(peft), ``projector.safetensors``, ``token_rows.safetensors`` of the step selected on validation
(``stages.llm.selection``), ``train_log.parquet`` (step, epoch, loss, hybrid fraction, lr, tokens, and
the step's wall and CPU seconds and page faults: ``stages.llm.process_clock``) and
``summary.json`` (with the ``selection`` object: metric, best and last step, validation history)
and ``tensorboard/`` (the same curves, written while it runs: ``stages.llm.monitor``).

DeepSpeed wraps the LoRA-wrapped LLM (``PromptLM``); the projector has its own Adam, stepped only
after an optimizer step in which some micro-batch (on any rank) was hybrid, so text-only steps leave
its weights and optimizer state untouched under every ZeRO stage (SPEC §1).

Runs as one process or under ``torchrun`` / ``deepspeed`` (RANK, WORLD_SIZE, LOCAL_RANK) unchanged.
Checkpoints (``checkpoint_dir``) hold the trainable weights, optimizer, scheduler, per-rank RNG
states, the data position and the log so far; ``resume=True`` continues a killed run exactly.
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from stages.files import sha256_file
from stages.llm.backbone import load_backbone
from stages.llm.checkpoint import Checkpointing
from stages.llm.config import FinetuneConfig, lr_multiplier, resolve_zero_stage
from stages.llm.curriculum import Curriculum
from stages.llm.data import Batch, PromptData
from stages.llm.deepspeed_config import deepspeed_config, init_distributed, on_gpu
from stages.llm.inputs import load_item_embeddings, read_prompts_info
from stages.llm.mixed_precision import autocast, resolved, store_frozen_linears_in_bf16
from stages.llm.model import (
    LlaraModel,
    PromptLM,
    build_llara_model,
    save_trained,
    token_rows,
)
from stages.llm.monitor import TrainingMonitor
from stages.llm.process_clock import CLOCK_COLUMNS, ProcessClock, malloc_in_use, matmul_gflops, process_clock
from stages.llm.selection import BestState, Selection
from stages.process import available_cores

NAME = "finetune"


class FinetuneRecipe(Checkpointing):
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
        self.selection: Selection | None = None
        self.best: BestState | None = None
        self.resumed_at: list[int] = []  # the step of every resume from a checkpoint
        # Wall-clock parts of this process's run that are not step or validation time, for the
        # budget planner (``stages.llm.budget``): a plan that leaves them out undershoots.
        self.started = time.perf_counter()
        self.setup_seconds = 0.0
        self.checkpoint_seconds: list[float] = []

    # ----- setup ---------------------------------------------------------------------------

    def setup(self) -> None:
        import deepspeed

        from stages.llm.validation import Validator

        cfg = self.config
        self.rank, self.world, self.local_rank = init_distributed()
        self.device = torch.device(f"cuda:{self.local_rank}") if on_gpu() else torch.device("cpu")
        if not on_gpu():
            ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            torch.set_num_threads(cfg.threads or max(1, available_cores() // ranks_here))
        self.precision = resolved(cfg.precision, self.device)
        info = read_prompts_info(self.prompts_dir, backbone=cfg.backbone)
        backbone = load_backbone(cfg.backbone)
        self.tokenizer = backbone.tokenizer
        items = load_item_embeddings(self.embeddings_dir, n_items=info["n_items"])
        self.embeddings_sha256 = sha256_file(self.embeddings_dir / "item_embeddings.safetensors")
        self.model: LlaraModel = build_llara_model(
            backbone,
            items,
            cfg.lora,
            cfg.seed,
            cfg.gradient_checkpointing,
            projector_norm=cfg.projector_norm,
            user_token=cfg.user_token,
        )
        if self.precision == "bf16":  # after LoRA is added: its trainable weights stay fp32
            store_frozen_linears_in_bf16(self.model.llm)
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
        self.curriculum = Curriculum(  # refuses a run that trains no hybrid step but evaluates hybrid
            cfg.schedule, self.total_steps, cfg.epochs, micro_per_epoch, cfg.seed,
            cfg.two_stage_text_fraction, self.micro_per_step,
        )  # fmt: skip
        # The projector and the SR table live outside the engine (see the module docstring).
        self.model.projector.to(self.device)
        self.model.item_embeddings = self.model.item_embeddings.to(self.device)
        self.projector_lr = cfg.projector_lr if cfg.projector_lr is not None else cfg.lr
        self.projector_optimizer = torch.optim.Adam(
            self.model.projector.parameters(), lr=self.projector_lr, weight_decay=cfg.weight_decay
        )
        self.lm = PromptLM(self.model.llm, backbone.tokens)
        lora = [p for p in self.lm.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam([{"params": lora, "weight_decay": 0.0}], lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, self.total_steps))
        self.zero_stage = resolve_zero_stage(cfg.zero_stage, self.world, cfg.offload)
        # bf16 is torch autocast over fp32 trainables (mixed_precision), not DeepSpeed's bf16 mode,
        # which would cast the LoRA weights themselves to bf16.
        ds = deepspeed_config(cfg.micro_batch, cfg.grad_accum, self.world, self.zero_stage, cfg.offload)
        torch.manual_seed(cfg.seed + 1000 * self.rank)  # dropout stream per rank
        self.engine, _, _, _ = deepspeed.initialize(
            model=self.lm, optimizer=optimizer, lr_scheduler=scheduler, config=ds
        )
        # A compiled graph is specialised to shapes: padding L to 64 and K to 16 bounds their number.
        self.pad_multiples = (cfg.pad_to_multiple_of, 1)
        if cfg.compile:
            self.engine.compile()
            self.pad_multiples = (cfg.pad_to_multiple_of if cfg.pad_to_multiple_of > 1 else 64, 16)
        if cfg.val_rows != 0:
            self.selection = Selection(cfg.selection_metric)
            self.validator = Validator(
                self.prompts_dir,
                cfg.selection_metric,
                self.curriculum.eval_hybrid,
                cfg.seed,
                cfg.val_rows,
                cfg.eval_batch_size,
                self.rank,
                self.world,
                shard=self.zero_stage != 3,
                fit_rows=self.data.fit_rows(cfg.fit_rows, self.curriculum.eval_hybrid),
            )
        if self.resume and self.checkpoint_dir is not None and (self.checkpoint_dir / "latest").is_file():
            self.load_checkpoint()
        self.monitor = TrainingMonitor(
            self.out_dir, cfg, self.total_steps, self.rank, self.world, self.device, self.embeddings_dir
        )
        self.monitor.start(self.log, self.selection)
        self.setup_seconds = time.perf_counter() - self.started

    # ----- training ------------------------------------------------------------------------

    def _sum_over_ranks(self, value: float) -> float:
        import deepspeed.comm as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(tensor)
        return float(tensor.item())

    def _log_sums(self, losses: list[torch.Tensor], batches: list[Batch]) -> list[float]:
        """(mean loss, hybrid fraction, real tokens, padded tokens) of this step summed over ranks.

        One reduction and one host sync per step: the losses stay on the device until here.
        """
        import deepspeed.comm as dist

        counts = torch.tensor(
            [
                sum(b.hybrid for b in batches) / len(batches),
                sum(b.real_tokens for b in batches),
                sum(b.attention_mask.numel() for b in batches),
            ],
            dtype=torch.float64,
        )
        sums = torch.cat([torch.stack(losses).double().mean().reshape(1), counts.to(self.device)])
        if self.world > 1:
            dist.all_reduce(sums)
        return sums.tolist()

    def step_is_hybrid(self) -> bool:
        """Whether any micro-batch of the current optimizer step, on any rank, is hybrid."""
        first = self.step_in_epoch * self.micro_per_step
        return any(
            self.curriculum.is_hybrid(self.global_step, self.epoch, first + i)
            for i in range(self.micro_per_step)
        )

    def optimizer_step(self, batches: list[Batch], projector_steps: bool) -> list[torch.Tensor]:
        """Forward/backward this rank's micro-batches of one step; step LoRA, and the projector if asked.

        ``projector_steps``: the same on every rank (``step_is_hybrid``); when False the projector's
        weights and Adam state are not touched. Returns the micro-batch losses (no host sync).
        """
        losses = []
        for batch in batches:
            batch = batch.to(self.device)
            with autocast(self.device, self.precision):
                loss = batch.loss(self.engine, self.model.projector, self.model.item_embeddings)
            self.engine.backward(loss)
            self.engine.step()
            losses.append(loss.detach())
        if projector_steps:
            self._step_projector()
        self.projector_optimizer.zero_grad(set_to_none=True)
        return losses

    def _step_projector(self) -> None:
        import deepspeed.comm as dist

        params = list(self.model.projector.parameters())
        for p in params:
            if p.grad is None:  # this rank ran no hybrid micro-batch; the others did
                p.grad = torch.zeros_like(p)
            if self.world > 1:  # the engine averages LoRA gradients over ranks; so do we
                dist.all_reduce(p.grad)
                p.grad.div_(self.world)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for group in self.projector_optimizer.param_groups:
            group["lr"] = self.projector_lr * lr_multiplier(self.global_step, self.total_steps)
        self.projector_optimizer.step()

    def step_batches(
        self, micro: list[np.ndarray], candidates: list[list[int]], step_in_epoch: int, global_step: int
    ) -> list[Batch]:
        """This rank's micro-batches of one optimizer step, built on the CPU (pinned for a GPU)."""
        cfg = self.config
        batches = []
        for a in range(cfg.grad_accum):
            index = step_in_epoch * self.micro_per_step + a * self.world + self.rank
            hybrid = self.curriculum.is_hybrid(global_step, self.epoch, index)
            template = self.data.template_of(self.epoch, index)
            batch = self.data.train_batch(micro[index], candidates, template, hybrid, *self.pad_multiples)
            batches.append(batch.pin_memory() if self.device.type == "cuda" else batch)
        return batches

    def train(self) -> None:
        """Run optimizer steps until ``total_steps``; validate and checkpoint on schedule.

        The next step's batches are built in a background thread while this step computes; it is
        waited for before validation, which uses the tokenizer too.
        """
        cfg = self.config
        self.engine.train()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llara-batches") as loader:
            while self.global_step < self.total_steps:
                candidates = self.data.epoch_candidates(self.epoch)
                micro = self.data.micro_batches(
                    self.epoch, cfg.micro_batch, self.micro_per_step, candidates, cfg.length_grouping
                )
                upcoming: Future | None = loader.submit(
                    self.step_batches, micro, candidates, self.step_in_epoch, self.global_step
                )
                while upcoming is not None:
                    start = process_clock()
                    batches = upcoming.result()
                    upcoming = None
                    if (
                        self.step_in_epoch + 1 < self.steps_per_epoch
                        and self.global_step + 1 < self.total_steps
                    ):
                        upcoming = loader.submit(
                            self.step_batches, micro, candidates, self.step_in_epoch + 1, self.global_step + 1
                        )
                    self._train_step(batches, start)
                    if self._validation_due():
                        if upcoming is not None:
                            wait([upcoming])
                        self.validate()
                    if (
                        cfg.checkpoint_every
                        and self.global_step % cfg.checkpoint_every == 0
                        and self.checkpoint_dir is not None
                    ):
                        saving = time.perf_counter()
                        self.save_checkpoint()
                        self.checkpoint_seconds.append(time.perf_counter() - saving)
                if self.step_in_epoch >= self.steps_per_epoch:
                    self.epoch, self.step_in_epoch = self.epoch + 1, 0

    def _train_step(self, batches: list[Batch], start: ProcessClock) -> None:
        """One optimizer step on ``batches`` and its log row."""
        cfg = self.config
        losses = self.optimizer_step(batches, self.step_is_hybrid())
        loss, hybrid, tokens, padded = self._log_sums(losses, batches)
        if not math.isfinite(loss):
            raise FloatingPointError(f"finetune: the loss is {loss} at step {self.global_step}")
        row = {
            "step": self.global_step,
            "epoch": self.epoch,
            "loss": loss / self.world,
            "hybrid": hybrid / self.world,
            "lr": cfg.lr * lr_multiplier(self.global_step, self.total_steps),  # the lr this step used
            "tokens": int(round(tokens)),
            "padded_tokens": int(round(padded)),
        } | start.since()
        self.log.append(row)
        self.step_in_epoch += 1
        self.global_step += 1
        self.monitor.step(row)

    def _validation_due(self) -> bool:
        if self.selection is None or self.selection.evaluated(self.global_step):
            return False
        every = self.config.eval_every
        return (
            (every > 0 and self.global_step % every == 0)
            or self.step_in_epoch >= self.steps_per_epoch
            or self.global_step >= self.total_steps
        )

    def validate(self) -> float:
        """Score validation now; keep the trainable state when it is the best so far."""
        assert self.selection is not None
        start = time.perf_counter()  # the probe below is part of what a validation costs the run
        # the machine's speed now, beside the step times around it (a shared machine's slow hour)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        gflops = matmul_gflops(self.device, dtype)
        self.engine.eval()
        with autocast(self.device, self.precision):
            probes = self.validator.measure(self.model, self.engine, self.tokenizer, self._sum_over_ranks)
        probes["matmul_gflops"] = gflops
        self.engine.train()
        seconds = time.perf_counter() - start
        value = probes.pop("value")
        improved = self.selection.record(self.global_step, self.epoch, value, seconds, probes)
        if improved:
            state, rows = self.trainable_state()
            self.best = BestState(self.global_step, state, rows)
            if self.rank == 0 and self.checkpoint_dir is not None:
                self.best.save(self.checkpoint_dir)
        self.monitor.validation(self.global_step, value, self.selection)
        return value

    # ----- output --------------------------------------------------------------------------

    def close(self) -> None:
        if (monitor := getattr(self, "monitor", None)) is not None:  # set up by setup()
            monitor.close()

    def trainable_state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Trainable tensors by ``LlaraModel`` name and the special-token rows (gathered under ZeRO-3)."""
        import deepspeed

        named = [(n, p) for n, p in self.engine.module.named_parameters() if p.requires_grad]
        projector = {
            f"projector.{n}": p.detach().float().cpu().clone()
            for n, p in self.model.projector.named_parameters()
        }
        embedding = self.model.llm.get_input_embeddings().weight
        if self.zero_stage == 3:
            with deepspeed.zero.GatheredParameters([p for _, p in named] + [embedding], modifier_rank=None):
                lora = {n: p.detach().float().cpu().clone() for n, p in named}
                return {**lora, **projector}, token_rows(self.model)
        lora = {n: p.detach().float().cpu().clone() for n, p in named}
        return {**lora, **projector}, token_rows(self.model)

    def save(self) -> dict:
        """Write the artifact files (rank 0): the selected step's weights, the log, the summary."""
        if self.best is not None:
            state, rows = self.best.state, self.best.rows
        else:
            state, rows = self.trainable_state()
        summary = {
            "dataset": self.data.info.get("dataset"),
            "backbone": self.config.backbone,
            "precision": self.precision,
            "schedule": self.config.schedule,
            "item_order": self.data.item_order,
            "seed": self.config.seed,
            "steps": self.global_step,
            "epochs": self.config.epochs,
            "world_size": self.world,
            "zero_stage": self.zero_stage,
            "train_rows": self.data.train_rows,
            "n_candidates": self.data.n_candidates,
            "total_steps": self.total_steps,
            "first_loss": self.log[0]["loss"] if self.log else None,
            "last_loss": self.log[-1]["loss"] if self.log else None,
            "hybrid_fraction": float(np.mean([r["hybrid"] for r in self.log])) if self.log else None,
            "val_hybrid": self.curriculum.eval_hybrid,
            "selection": self.selection.summary(self.global_step) if self.selection else None,
            "resumed_at": self.resumed_at,
            "trained_on": {
                "n_items": len(self.data.titles),
                "vocab_size": self.data.info.get("vocab_size"),
                "embeddings_sha256": self.embeddings_sha256,
                "embedding_dim": int(self.model.item_embeddings.shape[1]),
            },
            "train_seconds": float(sum(r["seconds"] for r in self.log)),
            "train_tokens": int(sum(r["tokens"] for r in self.log)),
            # this process's wall clock from set-up to here (a resumed run: since its resume)
            "setup_seconds": self.setup_seconds,
            "checkpoint_seconds": self.checkpoint_seconds,
            "wall_seconds": time.perf_counter() - self.started,
            "malloc": malloc_in_use(),  # glibc's slows a long run down as it goes (docs/long-runs.md)
            # how much it trained, for the report: rows of the steps run, and the whole train split
            "rows_seen": self.global_step * self.config.micro_batch * self.micro_per_step,
            "dataset_train_rows": pq.ParquetFile(self.prompts_dir / "train.parquet").metadata.num_rows,
        }
        self.close()  # the TensorBoard events are complete before the files are hashed
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_trained(self.model, self.out_dir, state, rows)
            columns = ("step", "epoch", "loss", "hybrid", "lr", "tokens", "padded_tokens", *CLOCK_COLUMNS)
            table = pa.table({c: [r.get(c) for r in self.log] for c in columns})
            pq.write_table(table, self.out_dir / "train_log.parquet")
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
    checkpoints and keeps the best validation state there; without one, a killed run starts over.
    """
    recipe = FinetuneRecipe(config, inputs["prompts"], inputs["embeddings"], out_dir, checkpoint_dir, resume)
    try:
        recipe.setup()
        recipe.train()
        return recipe.save()
    finally:
        recipe.close()
