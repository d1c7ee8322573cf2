"""TensorBoard event files of a training stage, written while it runs and kept in its artifact.

A stage writes under ``<out_dir>/tensorboard/<run name>/``, so ``tensorboard --logdir <store>``
shows every run of a store side by side, named ``objects/<artifact id>/tensorboard/<run name>``
once published (and ``tmp/<id>...`` while still running). Events are flushed at each call, so a
run that is killed keeps its curves up to that point.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

DIRECTORY = "tensorboard"


class Curves:
    """Scalars by tag and step: ``torch.utils.tensorboard``'s writer (the ``tensorboard`` package)."""

    def __init__(self, out_dir: Path, run_name: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.directory = Path(out_dir) / DIRECTORY / run_name
        # The stage owns out_dir: a rerun into the same directory starts its curves over rather than
        # interleaving two runs' events.
        shutil.rmtree(self.directory, ignore_errors=True)
        self.writer: SummaryWriter | None = SummaryWriter(str(self.directory))

    def add(self, step: int, values: dict[str, float | None]) -> None:
        """Each finite value under its tag at ``step``, flushed to disk now."""
        if self.writer is None:
            return
        for tag, value in values.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and stop the writer's thread (idempotent)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
