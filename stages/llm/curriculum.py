"""Curriculum schedules: which training batches use the hybrid prompt and which the text-only one.

- ``curriculum``: each optimizer step is hybrid with probability p = step / T (LLaRA's method).
- ``direct``: always hybrid.  ``text``: always text-only (the TALLRec row).
- ``two-stage``: the first ``text_fraction`` of the run's T optimizer steps (half by default)
  text-only, then hybrid. The switch is by step, not epoch, so a one-epoch run and one cut short by
  ``max_steps`` still train their second half on hybrid prompts.
- ``llara-official``: what the public code does. Its step counter lives in the collate function of
  each of 8 data-loader workers and restarts every epoch: micro-batch i of an epoch is collated by
  worker i % 8 whose counter is i // 8 + 1, and p = counter / T with T = epochs * micro-batches per
  epoch / 8. p climbs to about 1 / epochs within each epoch, so only ~10 % of batches are hybrid.

The draws are deterministic functions of (seed, step) or (seed, epoch, micro-batch), so a resumed
or multi-process run makes the same choices. Validation is hybrid for every schedule but ``text``,
so a run that would train no hybrid step under any other schedule (``curriculum`` with T = 1, a
``two-stage`` fraction of 1) is refused: it would select and test a projector that never moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCHEDULES = ("curriculum", "direct", "text", "two-stage", "llara-official")
OFFICIAL_WORKERS = 8


def _uniform(*key: int) -> float:
    return float(np.random.default_rng([abs(k) for k in key]).random())


@dataclass(frozen=True)
class Curriculum:
    """A schedule bound to a run's size. ``is_hybrid`` is the only question it answers."""

    schedule: str
    """One of ``SCHEDULES``."""
    total_steps: int
    """T: optimizer steps of the whole run."""
    epochs: int
    """Training epochs."""
    micro_batches_per_epoch: int
    """Global micro-batches per epoch (all ranks and accumulation steps together)."""
    seed: int = 0
    """Seed of the Bernoulli draws."""
    text_fraction: float = 0.5
    """``two-stage``: the fraction of the T steps trained text-only before the switch, in [0, 1)."""
    micro_per_step: int = 1
    """Global micro-batches per optimizer step: which micro-batches a run of T steps trains."""

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown curriculum schedule {self.schedule!r}: one of {SCHEDULES}")
        if not 0.0 <= self.text_fraction < 1.0:
            raise ValueError(f"two_stage_text_fraction must be in [0, 1), got {self.text_fraction}")
        if self.eval_hybrid and not self.trains_hybrid():
            raise ValueError(
                f"schedule {self.schedule!r} trains no hybrid step in a run of {self.total_steps} "
                "optimizer steps, yet validation and test prompts are hybrid (the projector would never "
                "move): give the run more steps, or use schedule 'text'"
            )

    @property
    def text_steps(self) -> int:
        """``two-stage``: the optimizer steps trained text-only before the switch."""
        return int(self.text_fraction * self.total_steps)

    def trains_hybrid(self) -> bool:
        """Whether some micro-batch of the run's T optimizer steps is hybrid."""
        if self.schedule != "llara-official":  # the draw is per step
            return any(self.is_hybrid(step, 0, 0) for step in range(self.total_steps))
        per_epoch = max(1, self.micro_batches_per_epoch)
        return any(
            self.is_hybrid(0, index // per_epoch, index % per_epoch)
            for index in range(self.total_steps * self.micro_per_step)
        )

    @property
    def eval_hybrid(self) -> bool:
        """Validation and test prompts are hybrid except for the text-only schedule."""
        return self.schedule != "text"

    def probability(self, step: int, epoch: int, micro_in_epoch: int) -> float:
        """p(hybrid) of a micro-batch: optimizer ``step`` (0-based), epoch, micro-batch index in the epoch."""
        if self.schedule == "direct":
            return 1.0
        if self.schedule == "text":
            return 0.0
        if self.schedule == "two-stage":
            return 0.0 if step < self.text_steps else 1.0
        if self.schedule == "curriculum":
            return min(1.0, step / max(1, self.total_steps))
        big_t = self.epochs * self.micro_batches_per_epoch / OFFICIAL_WORKERS
        counter = micro_in_epoch // OFFICIAL_WORKERS + 1
        return min(1.0, counter / max(big_t, 1e-9))

    def is_hybrid(self, step: int, epoch: int, micro_in_epoch: int) -> bool:
        """Whether this micro-batch uses the hybrid prompt (per-step draw except ``llara-official``)."""
        p = self.probability(step, epoch, micro_in_epoch)
        if p >= 1.0 or p <= 0.0:
            return p >= 1.0
        if self.schedule == "llara-official":
            return _uniform(self.seed, 1, epoch, micro_in_epoch) < p
        return _uniform(self.seed, 2, step) < p
