"""Suggest the step budget T of a ``long`` fine-tune that fits a wall-clock budget, from a timed pilot.

The pilot is a short fine-tune with the long run's settings (same backbone, batch, precision,
prompts and machine), e.g. ``llara finetune --profile long --max-steps 20 --set eval_every=10
--set checkpoint_every=10``. Its ``train_log.parquet`` gives the seconds of each optimizer step and
its ``summary.json`` the seconds of each validation, of each checkpoint and of the set-up (loading
the backbone and the data). A ``long`` run of T steps validates ``LONG_VALIDATIONS`` times (plus once
at the end when T is not a multiple of the spacing) and checkpoints every ``LONG_CHECKPOINT_EVERY``
steps. The run's artifact records T, never a time: T fixes the curriculum and the learning-rate
schedule, so the same T gives the same run on any machine.

    python -m stages.llm.budget PILOT_DIR --hours 2      # the T that fits
    python -m stages.llm.budget PILOT_DIR --steps 200    # the wall time T takes
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from stages.errors import DataError
from stages.llm.profiles import LONG_CHECKPOINT_EVERY, LONG_VALIDATIONS


@dataclass(frozen=True)
class PilotTiming:
    """What a pilot fine-tune measured."""

    step_seconds: float
    """Median seconds of an optimizer step, the first (warm-up) step left out."""
    validation_seconds: float
    """Mean seconds of one validation (all the pilot's val rows)."""
    steps: int
    """Optimizer steps the pilot ran."""
    setup_seconds: float = 0.0
    """Seconds from the start of the fine-tune to its first step (0 for a pilot that predates it)."""
    checkpoint_seconds: float = 0.0
    """Mean seconds of one checkpoint (0 if the pilot wrote none)."""
    malloc: str | None = None
    """The allocator the pilot ran under (its summary's ``malloc``; None for a pilot that predates it)."""

    def seconds_for(
        self,
        steps: int,
        validations: int = LONG_VALIDATIONS + 1,
        checkpoint_every: int = LONG_CHECKPOINT_EVERY,
    ) -> float:
        """Predicted wall seconds of a run of ``steps`` steps (the set-up included)."""
        checkpoints = steps // checkpoint_every if checkpoint_every else 0
        return (
            self.setup_seconds
            + steps * self.step_seconds
            + validations * self.validation_seconds
            + checkpoints * self.checkpoint_seconds
        )

    def steps_for(
        self,
        seconds: float,
        validations: int = LONG_VALIDATIONS + 1,
        checkpoint_every: int = LONG_CHECKPOINT_EVERY,
    ) -> int:
        """The largest T whose run (steps, validations, checkpoints, set-up) fits in ``seconds``."""
        per_step = self.step_seconds + (self.checkpoint_seconds / checkpoint_every if checkpoint_every else 0)
        left = seconds - self.setup_seconds - validations * self.validation_seconds
        steps = max(0, math.floor(left / per_step))
        # the estimate is off by a step either way where a checkpoint falls (or by rounding)
        while steps > 0 and self.seconds_for(steps, validations, checkpoint_every) > seconds:
            steps -= 1
        while self.seconds_for(steps + 1, validations, checkpoint_every) <= seconds:
            steps += 1
        return steps


def read_pilot(directory: Path) -> PilotTiming:
    """The timing of a finished fine-tune (artifact or ``--out`` directory)."""
    log_path, summary_path = directory / "train_log.parquet", directory / "summary.json"
    for path in (log_path, summary_path):
        if not path.is_file():
            raise DataError(path, None, "missing: not a finished fine-tune")
    seconds = pq.read_table(log_path).column("seconds").to_pylist()
    if len(seconds) < 2:
        raise DataError(log_path, "seconds", f"{len(seconds)} steps: a pilot needs at least 2")
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(summary_path, None, f"not valid JSON ({e})") from e
    selection = summary.get("selection") or {}
    timed = [h["seconds"] for h in selection.get("history", []) if "seconds" in h]
    if not timed:
        raise DataError(summary_path, "selection.history", "no timed validation: run the pilot with val rows")
    checkpoints = summary.get("checkpoint_seconds") or []
    return PilotTiming(
        step_seconds=statistics.median(seconds[1:]),
        validation_seconds=statistics.fmean(timed),
        steps=len(seconds),
        setup_seconds=float(summary.get("setup_seconds") or 0.0),
        checkpoint_seconds=statistics.fmean(checkpoints) if checkpoints else 0.0,
        malloc=summary.get("malloc"),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pilot", type=Path, help="the pilot fine-tune's directory (artifact or --out)")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument(
        "--hours", type=float, help="wall-clock budget of one fine-tune: prints the T that fits"
    )
    budget.add_argument("--steps", type=int, help="a step budget T: prints the wall time it takes")
    args = parser.parse_args(argv)
    timing = read_pilot(args.pilot)
    print(
        f"pilot: {timing.steps} steps, {timing.step_seconds:.2f} s/step (median), "
        f"{timing.validation_seconds:.1f} s/validation, {timing.checkpoint_seconds:.1f} s/checkpoint, "
        f"set-up {timing.setup_seconds:.0f} s, malloc {timing.malloc or 'not recorded'}"
    )
    if timing.malloc == "system":
        print(
            "warning: the pilot ran under the system's malloc, under which a long run slows down as it goes "
            "(glibc's: docs/long-runs.md); install tcmalloc (Debian/Ubuntu: libtcmalloc-minimal4), which "
            "llara then runs under, and time the pilot again"
        )
    validations = LONG_VALIDATIONS + 1
    if args.hours is not None:
        steps = timing.steps_for(args.hours * 3600)
        print(f"fits {args.hours:g} h with {validations} validations: --max-steps {steps}")
    else:
        seconds = timing.seconds_for(args.steps)
        print(
            f"--max-steps {args.steps} with {validations} validations: "
            f"{seconds / 3600:.2f} h ({seconds:.0f} s)"
        )


if __name__ == "__main__":
    main()
