"""Model selection on validation: the metric's history, the best step, and the best trainable state.

The public code scores validation every epoch and keeps the best checkpoint; so do we, every
``eval_every`` optimizer steps and at each epoch end. A tie keeps the earlier step. The best
trainable tensors (LoRA, projector, special-token rows) are held in memory for the artifact and,
when the run has a scratch directory, written there atomically (``BestState``) so that a killed
run resumes with its best-so-far.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

METRICS: tuple[str, ...] = ("scoring_hr1", "generation_hr1", "val_loss")


@dataclass
class Selection:
    """The validation curve of one run and its best point."""

    metric: str
    """One of ``METRICS``; ``val_loss`` is minimised, the hit ratios maximised."""
    history: list[dict] = field(default_factory=list)
    """``{"step", "epoch", "value"[, "seconds"], probes...}`` per validation, in order; ``step`` counts
    optimizer steps done, ``seconds`` the validation's wall time, the probes are ``val_hr1``,
    ``val_mrr``, ``val_nll`` and the same of the fit sample (``fit_*``, ``stages.llm.validation``)."""
    best_step: int | None = None
    best_value: float | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown selection metric {self.metric!r}: one of {', '.join(METRICS)}")

    def better(self, value: float) -> bool:
        """Strictly better than the best so far (so a tie keeps the earlier step); NaN never is."""
        if math.isnan(value):
            return False
        if self.best_value is None:
            return True
        return value < self.best_value if self.metric == "val_loss" else value > self.best_value

    def record(
        self,
        step: int,
        epoch: int,
        value: float,
        seconds: float | None = None,
        probes: dict[str, float] | None = None,
    ) -> bool:
        """Add a validation point (``seconds``: how long it took, if known; ``probes``: the learning
        probes measured with it); True when it is the new best."""
        point: dict = {"step": step, "epoch": epoch, "value": float(value)}
        if seconds is not None:
            point["seconds"] = round(float(seconds), 3)
        point.update({k: round(float(v), 6) for k, v in (probes or {}).items()})
        self.history.append(point)
        if self.better(value):
            self.best_step, self.best_value = step, float(value)
            return True
        return False

    def evaluated(self, step: int) -> bool:
        return any(h["step"] == step for h in self.history)

    def state(self) -> dict:
        return {
            "metric": self.metric,
            "history": list(self.history),
            "best_step": self.best_step,
            "best_value": self.best_value,
        }

    @classmethod
    def from_state(cls, state: dict) -> Selection:
        return cls(state["metric"], list(state["history"]), state["best_step"], state["best_value"])

    def summary(self, last_step: int) -> dict:
        """The ``selection`` object of ``summary.json``."""
        return {
            "metric": self.metric,
            "best_step": self.best_step,
            "best_value": self.best_value,
            "last_step": last_step,
            "history": list(self.history),
        }


@dataclass
class BestState:
    """Trainable tensors of the best step: ``state`` by parameter name, ``rows`` the special-token rows.

    On disk one file per step (``best-step-NNNNNNN.pt``): a resumed run may go back to a checkpoint
    taken before a later best, so the file its checkpoint names must still be there; older files go
    once a checkpoint that names a newer best is complete (``prune``).
    """

    step: int
    state: dict[str, torch.Tensor]
    rows: dict[str, torch.Tensor]

    @staticmethod
    def path(directory: Path, step: int) -> Path:
        return directory / f"best-step-{step:07d}.pt"

    def save(self, directory: Path) -> None:
        """Write this step's file atomically (a kill leaves no partial file under the final name)."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".best.{os.getpid()}.tmp"
        torch.save({"step": self.step, "state": self.state, "rows": self.rows}, tmp)
        os.replace(tmp, self.path(directory, self.step))

    @classmethod
    def load(cls, directory: Path, step: int) -> BestState:
        path = cls.path(directory, step)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the best validation state of step {step} is missing")
        saved = torch.load(path, weights_only=True)
        return cls(int(saved["step"]), saved["state"], saved["rows"])

    @classmethod
    def prune(cls, directory: Path, keep_steps: set[int]) -> None:
        """Remove best-state files of steps not in ``keep_steps`` and later than none of them."""
        newest = max(keep_steps, default=-1)
        for path in directory.glob("best-step-*.pt"):
            step = int(path.stem.rsplit("-", 1)[1])
            if step not in keep_steps and step < newest:
                path.unlink(missing_ok=True)
