"""What a fine-tune shows while it runs, from global rank 0 only.

- A log line every ``every`` optimizer steps (about ``LINES`` per run) and one per validation on
  ``llara.finetune``, or a bar on a terminal (``stages.progress.Progress``).
- The progress (steps done of the run's total) and the validation history so far as a table, to
  the installed reporter: the task run's artifacts in the Prefect UI (``tasks.progress``).
- TensorBoard events in the artifact (``tensorboard/finetune-<sr>-<schedule>-seed<seed>/``): per step
  ``train/loss``, ``train/lr``, ``train/hybrid``, ``train/tokens_per_s`` (the values of
  ``train_log.parquet``), and ``val/<metric>`` at each validation. A resumed run writes the steps
  restored from its checkpoint first, so the published events hold the whole run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from stages.item_embeddings import INFO
from stages.llm.config import FinetuneConfig
from stages.llm.process_clock import busy_cores
from stages.llm.selection import Selection
from stages.metrics import PROBES
from stages.progress import Progress, report_table
from stages.tensorboard import Curves

LINES = 50
"""About this many step lines per run in a log (every step of a short run)."""

log = logging.getLogger("llara.finetune")


def train_scalars(row: dict) -> dict[str, float]:
    """The TensorBoard scalars of one ``train_log.parquet`` row."""
    return {
        "train/loss": row["loss"],
        "train/lr": row["lr"],
        "train/hybrid": row["hybrid"],
        "train/tokens_per_s": row["tokens"] / row["seconds"] if row["seconds"] > 0 else None,
        "train/busy_cores": busy_cores(row),
        "train/page_faults": row.get("page_faults"),
    }


def validation_scalars(point: dict, metric: str) -> dict[str, float]:
    """TensorBoard scalars of one validation point: ``val/<metric>`` and ``probe/<name>`` each."""
    scalars = {f"val/{metric}": point["value"]} | {f"probe/{k}": point[k] for k in PROBES if k in point}
    return scalars | {"machine/matmul_gflops": point.get("matmul_gflops")}


def run_name(config: FinetuneConfig, embeddings_dir: Path) -> str:
    """``finetune-<recommender>-<schedule>-seed<seed>``: which row of a store's runs this is."""
    info = Path(embeddings_dir) / INFO
    sr = json.loads(info.read_text()).get("model", "items") if info.is_file() else "items"
    return f"finetune-{sr}-{config.schedule}-seed{config.seed}"


def step_line(row: dict, total: int) -> str:
    per_s = row["tokens"] / row["seconds"] if row["seconds"] > 0 else 0.0
    return (
        f"step {row['step']} loss {row['loss']:.4f} hybrid {row['hybrid']:.2f} lr {row['lr']:.2e} "
        f"{per_s:.0f} tokens/s {row['seconds']:.2f}s ({row['step'] + 1}/{total})"
    )


class TrainingMonitor:
    """Progress, log lines, validation table and TensorBoard curves of one run (rank 0; else inert)."""

    def __init__(
        self,
        out_dir: Path,
        config: FinetuneConfig,
        total_steps: int,
        rank: int,
        world: int,
        device: torch.device,
        embeddings_dir: Path,
    ) -> None:
        self.total = total_steps
        self.progress: Progress | None = None
        self.curves: Curves | None = None
        # every rank says where it runs (DeepSpeed's own notice of a CPU run is filtered out)
        log.info(
            "training on %s, process %d of %d: %d optimizer steps", device.type, rank, world, total_steps
        )
        if rank != 0:
            return
        self.progress = Progress(
            "finetune",
            total_steps,
            unit="step",
            every=max(1, total_steps // LINES),
            description=f"finetune {config.schedule} seed={config.seed}",
        )
        self.curves = Curves(out_dir, run_name(config, embeddings_dir))

    def start(self, rows: list[dict], selection: Selection | None) -> None:
        """Before the first step: the steps and validations a resumed run restored."""
        if self.curves is None or self.progress is None:
            return
        for row in rows:
            self.curves.add(row["step"], train_scalars(row))
        if rows:  # not a ``step N loss`` line: those are the steps this process trains
            last = rows[-1]
            self.progress.update(len(rows), f"restored steps 0-{last['step']} (last loss {last['loss']:.4f})")
        if selection is not None and selection.history:
            for point in selection.history:
                self.curves.add(point["step"], validation_scalars(point, selection.metric))
            self._table(selection)

    def step(self, row: dict) -> None:
        if self.curves is None or self.progress is None:
            return
        self.curves.add(row["step"], train_scalars(row))
        self.progress.update(row["step"] + 1, step_line(row, self.total), loss=f"{row['loss']:.4f}")

    def validation(self, step: int, value: float, selection: Selection) -> None:
        """After ``selection`` recorded ``value`` at ``step``."""
        if self.curves is None:
            return
        point = selection.history[-1]
        self.curves.add(step, validation_scalars(point, selection.metric))
        mark = " (best)" if selection.best_step == step else ""
        probes = "".join(f", {k} {point[k]:.4f}" for k in PROBES if k in point)
        log.info(
            "validation at step %d/%d: %s %.4f%s%s", step, self.total, selection.metric, value, probes, mark
        )
        self._table(selection)

    def _table(self, selection: Selection) -> None:
        best, metric = selection.best_step, selection.metric
        rows = [
            {"step": h["step"], "epoch": h["epoch"], metric: h["value"]}
            | {k: h[k] for k in PROBES if k in h}
            | {"best": h["step"] == best}
            for h in selection.history
        ]
        report_table("finetune", "validation", rows)

    def close(self) -> None:
        """Flush the event file and end the progress display (idempotent)."""
        if self.curves is not None:
            self.curves.close()
        if self.progress is not None:
            self.progress.close()
