"""A synthetic task only the item embeddings can solve: does the hybrid path carry the answer?

Items come in groups of ``group_size`` whose SR embeddings are noisy copies of one random centre
(groups are nearly orthogonal in 64 dimensions). A row's history is all but one item of a group, in
random order, and its target is the remaining one, so the target is the candidate whose embedding is
closest to the history's: a candidate draw (the frozen val/test one or a train redraw) never holds
another item of the group, because the others are all in the history. Titles are random word
strings, unrelated to the groups.

Validation and test rows come from groups of their own, never seen in training, with their 19
negatives drawn from the other held-out groups of the split. So memorising which titles go together
in training rows (which a text-only model can do) is no help at validation, and no candidate is
marked out by never having been a training target: on validation a text-only model (``text``,
TALLRec) is at chance, 1 / 20, and a model that reads the projected embeddings can be far above it.

``python -m stages.llm.synthetic --out DIR`` builds the data, prompts and embeddings, fine-tunes
the ``direct`` and ``text`` schedules through ``python -m stages.llm`` (the finetune stage, DeepSpeed)
and prints each run's validation HR@1 against chance: a check, before hours are spent on a real
run, that the projector's output reaches the model where the titles are.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_CANDIDATES = 20
_WORDS = (
    "story love war star night day city man woman world life time dark last first king queen lord "
    "return rise empire legend dream house party beautiful blue red black white green summer winter "
    "toy heat jumanji casino sabrina balto nixon"
)
TITLE_WORDS = tuple(_WORDS.split(" "))
"""Words of the random titles: whole pieces of the tiny test tokenizer, so titles stay short."""


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and noise of the synthetic dataset."""

    train_groups: int = 400
    """Groups whose rows are train rows (``group_size`` rows each, one per member as the target)."""
    eval_groups: int = 12
    """Groups of the validation split, and as many of the test split (held out from training)."""
    group_size: int = 4
    """Items per group: ``group_size - 1`` history items and the target (history of at least 3)."""
    noise: float = 0.1
    """Standard deviation of an item's offset from its group centre (centres are standard normal)."""
    dim: int = 64
    """Width of the SR item embeddings."""
    n_candidates: int = N_CANDIDATES
    """Candidates per row (the target and ``n_candidates - 1`` negatives); chance is 1 / n_candidates."""
    seed: int = 0
    """Seed of centres, offsets, titles, orders and the frozen candidates."""

    def __post_init__(self) -> None:
        if self.group_size < 4:
            raise ValueError("group_size must be at least 4: histories have at least 3 items")
        if (self.eval_groups - 1) * self.group_size < self.n_candidates - 1:
            raise ValueError(
                f"eval_groups={self.eval_groups}: the other held-out groups must hold "
                f"{self.n_candidates - 1} negatives"
            )


def _titles(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct titles of two random words and a digit."""
    seen: set[str] = set()
    titles: list[str] = []
    while len(titles) < n:
        words = rng.choice(len(TITLE_WORDS), size=2)
        title = f"{TITLE_WORDS[words[0]]} {TITLE_WORDS[words[1]]} {int(rng.integers(10))}"
        if title not in seen:
            seen.add(title)
            titles.append(title)
    return titles


def write_synthetic(root: Path, config: SyntheticConfig = SyntheticConfig()) -> dict[str, Path]:
    """Write the prepared dataset and the item-embedding table; ``{"dataset", "embeddings"}`` dirs."""
    import torch

    from stages.item_embeddings import save_item_embeddings
    from stages.seqrec.data import EXAMPLE_COLUMNS, write_prepared

    rng = np.random.default_rng([config.seed, 24])
    size = config.group_size
    split_groups = {"train": config.train_groups, "val": config.eval_groups, "test": config.eval_groups}
    n_groups = sum(split_groups.values())
    centres = rng.standard_normal((n_groups, config.dim))
    offsets = config.noise * rng.standard_normal((n_groups * size, config.dim))
    table = np.repeat(centres, size, axis=0) + offsets
    order = rng.permutation(n_groups * size)  # item ids carry no group structure either
    groups = order.reshape(n_groups, size)  # groups[g] = the item ids of group g
    titles = _titles(n_groups * size, rng)
    embeddings = np.empty_like(table)
    embeddings[order] = table  # item order[k] gets row k, so groups[g] are rows g*size .. g*size+size-1

    rows: dict[str, list] = {c: [] for c in EXAMPLE_COLUMNS}
    first = 0
    for split, count in split_groups.items():
        mine = groups[first : first + count]
        first += count
        for members in mine:
            others = np.setdiff1d(mine.ravel(), members)
            for target in members:
                history = rng.permutation([int(i) for i in members if i != target]).tolist()
                candidates = None
                if split != "train":
                    negatives = rng.choice(others, size=config.n_candidates - 1, replace=False)
                    candidates = rng.permutation([int(target), *map(int, negatives)]).tolist()
                user = len(rows["user_id"])
                for key, value in zip(
                    EXAMPLE_COLUMNS, (split, user, history, int(target), candidates), strict=True
                ):
                    rows[key].append(value)
    dataset = write_prepared(root / "dataset", titles, rows, name="synthetic-groups", seed=config.seed)
    save_item_embeddings(
        torch.from_numpy(embeddings).float(), root / "embeddings", model="synthetic-groups", seed=config.seed
    )
    return {"dataset": dataset, "embeddings": root / "embeddings"}


def build_inputs(root: Path, backbone: str, config: SyntheticConfig = SyntheticConfig()) -> dict[str, Path]:
    """The synthetic dataset, its embeddings and its prompts for ``backbone``, under ``root``."""
    from stages.llm import prompts

    paths = write_synthetic(root, config)
    out = root / "prompts"
    out.mkdir(parents=True, exist_ok=True)
    prompts.run(prompts.PromptsConfig(backbone=backbone), {"dataset": paths["dataset"]}, out)
    return {**paths, "prompts": out}


def finetune_settings(steps: int, backbone: str = "tiny-random", lr: float = 5e-3) -> list[str]:
    """``--set`` overrides of the smoke profile for one synthetic run: every train row, all val rows,
    validation every ``steps // 4`` steps, no dropout (a short run; the signal is what matters)."""
    return [
        f"backbone={backbone}",
        "max_train_rows=none",
        f"max_steps={steps}",
        "epochs=1000",
        "micro_batch=8",
        "grad_accum=1",
        f"lr={lr}",
        "val_rows=none",
        f"eval_every={max(1, steps // 4)}",
        'lora={"dropout": 0.0}',
    ]


def finetune_command(inputs: dict[str, Path], out: Path, schedule: str, settings: list[str]) -> list[str]:
    """``python -m stages.llm ...`` for one synthetic fine-tune (the finetune stage as users run it)."""
    command = [sys.executable, "-m", "stages.llm", "--profile", "smoke"]
    command += ["--prompts", str(inputs["prompts"]), "--embeddings", str(inputs["embeddings"])]
    command += ["--out", str(out)]
    for item in [*settings, f"schedule={schedule}"]:
        command += ["--set", item]
    return command


def best_hr1(out: Path) -> tuple[float, list[float]]:
    """(best, history) of a finished run's validation scoring HR@1 (``summary.json``)."""
    selection = json.loads((out / "summary.json").read_text())["selection"]
    return float(selection["best_value"]), [float(h["value"]) for h in selection["history"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="work directory (data, prompts, runs)")
    parser.add_argument("--backbone", default="tiny-random", help="tiny-random, smollm2-135m or hf:DIR")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps of 8 rows per run")
    parser.add_argument("--lr", type=float, default=5e-3, help="peak learning rate")
    parser.add_argument("--schedule", action="append", default=None, help="[default: direct and text]")
    args = parser.parse_args(argv)
    inputs = build_inputs(args.out, args.backbone)
    settings = finetune_settings(args.steps, args.backbone, args.lr)
    repo = str(Path(__file__).resolve().parents[2])  # the children import this checkout's stages
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}
    print(f"chance: {1 / N_CANDIDATES:.3f} (validation HR@1 by candidate scoring)", flush=True)
    for schedule in args.schedule or ["direct", "text"]:
        out = args.out / f"run-{schedule}"
        subprocess.run(finetune_command(inputs, out, schedule, settings), check=True, env=env)
        best, history = best_hr1(out)
        curve = ", ".join(f"{v:.3f}" for v in history)
        print(f"{schedule}: best validation HR@1 {best:.3f} (curve: {curve})", flush=True)


if __name__ == "__main__":
    main()
