"""Suggest the step budget T of a ``long`` fine-tune that fits a wall-clock budget, from a timed pilot.

The pilot is a short fine-tune with the long run's settings (same backbone, batch, precision,
prompts and machine), e.g. ``llara finetune --profile long --max-steps 20 --set eval_every=10``. Its
``train_log.parquet`` gives the seconds of each optimizer step and its ``summary.json`` the seconds of
each validation; a ``long`` run of T steps validates ``LONG_VALIDATIONS`` times (plus once at the end
when T is not a multiple of the spacing). The run's artifact records T, never a time: T fixes the
curriculum and the learning-rate schedule, so the same T gives the same run on any machine.

    python -m stages.llm.budget PILOT_DIR --hours 2
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
from stages.llm.profiles import LONG_VALIDATIONS


@dataclass(frozen=True)
class PilotTiming:
    """What a pilot fine-tune measured."""

    step_seconds: float
    """Median seconds of an optimizer step, the first (warm-up) step left out."""
    validation_seconds: float
    """Mean seconds of one validation (all the pilot's val rows)."""
    steps: int
    """Optimizer steps the pilot ran."""

    def steps_for(self, seconds: float, validations: int = LONG_VALIDATIONS + 1) -> int:
        """The largest T whose steps and ``validations`` validations fit in ``seconds`` (0 if none)."""
        left = seconds - validations * self.validation_seconds
        return max(0, math.floor(left / self.step_seconds))


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
        selection = json.loads(summary_path.read_text()).get("selection") or {}
    except json.JSONDecodeError as e:
        raise DataError(summary_path, None, f"not valid JSON ({e})") from e
    timed = [h["seconds"] for h in selection.get("history", []) if "seconds" in h]
    if not timed:
        raise DataError(summary_path, "selection.history", "no timed validation: run the pilot with val rows")
    return PilotTiming(statistics.median(seconds[1:]), statistics.fmean(timed), len(seconds))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pilot", type=Path, help="the pilot fine-tune's directory (artifact or --out)")
    parser.add_argument("--hours", type=float, required=True, help="wall-clock budget of one fine-tune")
    args = parser.parse_args(argv)
    timing = read_pilot(args.pilot)
    steps = timing.steps_for(args.hours * 3600)
    print(
        f"pilot: {timing.steps} steps, {timing.step_seconds:.2f} s/step (median), "
        f"{timing.validation_seconds:.1f} s/validation"
    )
    print(f"fits {args.hours:g} h with {LONG_VALIDATIONS + 1} validations: --max-steps {steps}")


if __name__ == "__main__":
    main()
