"""What a recommender's training shows while it runs: one update per epoch.

A bar on a terminal, else a log line on ``llara.pretrain``, and the progress (epochs done of the
most it may run; complete when early stopping ends it) to the installed reporter (the Prefect UI:
``tasks.progress``), through ``stages.progress.Progress``. With an output directory, TensorBoard
events in ``tensorboard/pretrain-<model>-<loss>-seed<seed>/``: ``train/loss`` and ``val/hr@1``,
``val/ndcg@5`` per epoch (the values of ``train_log.parquet``).
"""

from __future__ import annotations

from pathlib import Path

from stages.progress import Progress
from stages.seqrec.config import PretrainConfig
from stages.tensorboard import Curves


class EpochMonitor:
    def __init__(self, config: PretrainConfig, out_dir: Path | None) -> None:
        self.config = config
        name = f"{config.model}/{config.loss}"
        self.progress = Progress("pretrain", config.epochs, "epoch", description=name, show=config.progress)
        run = f"pretrain-{config.model}-{config.loss}-seed{config.seed}"
        self.curves = Curves(out_dir, run) if out_dir is not None else None

    def epoch(self, row: dict, val: float, improved: bool, stop: bool) -> None:
        """After epoch ``row["epoch"]`` (its ``train_log.parquet`` row); ``stop``: early stopping ends it."""
        cfg, epoch = self.config, row["epoch"]
        if self.curves is not None:
            self.curves.add(
                epoch,
                {"train/loss": row["loss"], "val/hr@1": row["val_hr@1"], "val/ndcg@5": row["val_ndcg@5"]},
            )
        line = (
            f"{cfg.model}/{cfg.loss} epoch {epoch + 1}/{cfg.epochs} loss {row['loss']:.4f} "
            f"val {cfg.select_metric} {val:.4f}{' (best)' if improved else ''}"
        )
        if stop:
            self.progress.finish(
                f"{line}; stopped early: no better {cfg.select_metric} in {cfg.patience} epochs"
            )
        else:
            self.progress.update(epoch + 1, line, loss=f"{row['loss']:.4f}", val=f"{val:.4f}")

    def close(self) -> None:
        if self.curves is not None:
            self.curves.close()
        self.progress.close()

    def __enter__(self) -> EpochMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
