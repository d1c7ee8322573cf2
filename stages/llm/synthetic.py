"""A synthetic task only the item embeddings can solve: does the hybrid path carry the answer?

Titles are random word strings with no relation to anything; only the SR item embeddings say which
candidate is the target. Two tasks:

- ``marked`` (the check): every target item's embedding carries a marker, a fixed direction of
  length ``marker``; no other candidate of a validation or test row has it. The model has to find
  the marked candidate's placeholder and answer with the title written before it.
- ``nearest``: items come in groups whose embeddings are noisy copies of one centre; a row's history
  is all of a group but the target, so the target is the candidate closest to the history (no draw
  of negatives holds another group member). Harder: the model also has to compare embeddings.

Validation and test rows use items of their own, never seen in training (targets, histories and
negatives alike), so neither which titles were training targets nor which titles went together is
any help: a text-only model (``text``, TALLRec) is at chance, 1 / ``n_candidates``, and a model that
reads the projected embeddings can be far above it, but only if each projected embedding sits on
its own item's placeholder, right after its title. Training rows get their negatives redrawn each
epoch from all items, as any dataset's; under ``marked`` a few of them may be marked too.

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
from typing import Literal

import numpy as np

_WORDS = (
    "story love war star night day city man woman world life time dark last first king queen lord "
    "return rise empire legend dream house party beautiful blue red black white green summer winter "
    "toy heat jumanji casino sabrina balto nixon"
)
TITLE_WORDS = tuple(_WORDS.split(" "))
"""Words of the random titles: whole pieces of the tiny test tokenizer, so titles stay short."""
HISTORY = 3


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic task and its size."""

    task: Literal["marked", "nearest"] = "marked"
    """``marked``: the target's embedding carries a marker; ``nearest``: it is the history's nearest."""
    train_targets: int = 200
    """``marked``: distinct training targets (``rows_per_target`` rows each); ``nearest``: training
    groups (one row per member)."""
    rows_per_target: int = 5
    """``marked``: training rows per target, each with its own history."""
    eval_rows: int = 100
    """Rows of the validation split, and of the test split."""
    fillers_per_row: int = 4
    """``marked``: unmarked items per row of a split (its histories and negatives)."""
    marker: float = 6.0
    """``marked``: length of the marker added to a target's embedding (entries are standard normal)."""
    noise: float = 0.1
    """``nearest``: standard deviation of an item's offset from its group centre."""
    dim: int = 64
    """Width of the SR item embeddings."""
    n_candidates: int = 20
    """Candidates per row (the target and ``n_candidates - 1`` negatives); chance is 1 / n_candidates."""
    seed: int = 0
    """Seed of embeddings, titles, rows and the frozen candidates."""

    def __post_init__(self) -> None:
        if self.task not in ("marked", "nearest"):
            raise ValueError(f"task must be marked or nearest, got {self.task!r}")
        eval_items = self.eval_rows * (self.fillers_per_row if self.task == "marked" else HISTORY + 1)
        if eval_items - HISTORY - 1 < self.n_candidates - 1:
            raise ValueError(f"eval_rows={self.eval_rows}: too few items for {self.n_candidates} candidates")
        if self.task == "nearest" and self.eval_rows % (HISTORY + 1):
            raise ValueError(f"nearest: eval_rows must be a multiple of {HISTORY + 1} (whole groups)")


Rows = list[tuple[list[int], int, list[int] | None]]
"""(history, target, candidates or None for a training row) per row."""


def _titles(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct titles of two random words and a number."""
    seen: set[str] = set()
    titles: list[str] = []
    while len(titles) < n:
        words = rng.choice(len(TITLE_WORDS), size=2)
        title = f"{TITLE_WORDS[words[0]]} {TITLE_WORDS[words[1]]} {int(rng.integers(100))}"
        if title not in seen:
            seen.add(title)
            titles.append(title)
    return titles


def _candidates(target: int, pool: np.ndarray, history: list[int], n: int, rng) -> list[int]:
    negatives = rng.choice(np.setdiff1d(pool, [target, *history]), size=n - 1, replace=False)
    return rng.permutation([target, *map(int, negatives)]).tolist()


def _marked(config: SyntheticConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Rows]]:
    """Embeddings (rows in item-id order) and rows of the ``marked`` task."""
    sizes = {"train": config.train_targets, "val": config.eval_rows, "test": config.eval_rows}
    rows_of = {"train": config.rows_per_target, "val": 1, "test": 1}
    n_items = sum(n * (1 + rows_of[s] * config.fillers_per_row) for s, n in sizes.items())
    ids = rng.permutation(n_items)  # item ids say nothing about the role of an item
    table = rng.standard_normal((n_items, config.dim))
    direction = rng.standard_normal(config.dim)
    direction /= np.linalg.norm(direction)
    out: dict[str, Rows] = {}
    first = 0
    for split, n in sizes.items():
        targets = ids[first : first + n]
        fillers = ids[first + n : first + n * (1 + rows_of[split] * config.fillers_per_row)]
        first += n * (1 + rows_of[split] * config.fillers_per_row)
        table[targets] += config.marker * direction
        out[split] = []
        for target in targets.tolist():
            for _ in range(rows_of[split]):
                history = rng.choice(fillers, size=HISTORY, replace=False).tolist()
                cands = None
                if split != "train":
                    cands = _candidates(target, fillers, history, config.n_candidates, rng)
                out[split].append((history, target, cands))
    return table, out


def _nearest(config: SyntheticConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Rows]]:
    """Embeddings (rows in item-id order) and rows of the ``nearest`` task."""
    size = HISTORY + 1
    eval_groups = config.eval_rows // size
    groups_of = {"train": config.train_targets, "val": eval_groups, "test": eval_groups}
    n_groups = sum(groups_of.values())
    centres = np.repeat(rng.standard_normal((n_groups, config.dim)), size, axis=0)
    ids = rng.permutation(n_groups * size)
    table = np.empty((n_groups * size, config.dim))
    table[ids] = centres + config.noise * rng.standard_normal(centres.shape)  # ids[g*size:...]: group g
    out: dict[str, Rows] = {}
    first = 0
    for split, count in groups_of.items():
        mine = ids[first * size : (first + count) * size]
        first += count
        out[split] = []
        for members in mine.reshape(count, size).tolist():
            for target in members:
                history = rng.permutation([i for i in members if i != target]).tolist()
                cands = None
                if split != "train":  # negatives from the split's other groups
                    cands = _candidates(target, mine, members, config.n_candidates, rng)
                out[split].append((history, target, cands))
    return table, out


def write_synthetic(root: Path, config: SyntheticConfig = SyntheticConfig()) -> dict[str, Path]:
    """Write the prepared dataset and the item-embedding table; ``{"dataset", "embeddings"}`` dirs."""
    import torch

    from stages.item_embeddings import save_item_embeddings
    from stages.seqrec.data import EXAMPLE_COLUMNS, write_prepared

    rng = np.random.default_rng([config.seed, 24])
    table, by_split = (_marked if config.task == "marked" else _nearest)(config, rng)
    titles = _titles(len(table), rng)
    rows: dict[str, list] = {c: [] for c in EXAMPLE_COLUMNS}
    for split, split_rows in by_split.items():
        for history, target, candidates in split_rows:
            values = (split, len(rows["user_id"]), history, target, candidates)
            for key, value in zip(EXAMPLE_COLUMNS, values, strict=True):
                rows[key].append(value)
    name = f"synthetic-{config.task}"
    dataset = write_prepared(root / "dataset", titles, rows, name=name, seed=config.seed)
    save_item_embeddings(torch.from_numpy(table).float(), root / "embeddings", model=name, seed=config.seed)
    return {"dataset": dataset, "embeddings": root / "embeddings"}


def build_inputs(root: Path, backbone: str, config: SyntheticConfig = SyntheticConfig()) -> dict[str, Path]:
    """The synthetic dataset, its embeddings and its prompts for ``backbone``, under ``root``."""
    from stages.llm import prompts

    paths = write_synthetic(root, config)
    out = root / "prompts"
    out.mkdir(parents=True, exist_ok=True)
    prompts.run(prompts.PromptsConfig(backbone=backbone), {"dataset": paths["dataset"]}, out)
    return {**paths, "prompts": out}


def truncated_backbone(spec: str, layers: int, directory: Path) -> str:
    """``hf:DIR`` for the first ``layers`` transformer blocks of backbone ``spec`` (its embeddings, final
    norm and head kept): the weights and tokenizer files are linked, only ``config.json`` is new.

    A pretrained model cut to two blocks keeps what a random one lacks (token embeddings with a large
    enough scale to move the logits, heads that read the previous tokens) at a tenth of the cost.
    """
    from stages.llm.backbone import resolve_backbone_dir

    source = resolve_backbone_dir(spec)
    directory.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir():
        if file.name not in ("config.json", "conversion.json") and not (directory / file.name).exists():
            (directory / file.name).symlink_to(file.resolve())
    config = json.loads((source / "config.json").read_text())
    if layers > int(config["num_hidden_layers"]):
        raise ValueError(f"{spec} has {config['num_hidden_layers']} layers, not {layers}")
    config["num_hidden_layers"] = layers
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return f"hf:{directory}"


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
    chance = 1 / SyntheticConfig().n_candidates
    print(f"chance: {chance:.3f} (validation HR@1 by candidate scoring)", flush=True)
    for schedule in args.schedule or ["direct", "text"]:
        out = args.out / f"run-{schedule}"
        subprocess.run(finetune_command(inputs, out, schedule, settings), check=True, env=env)
        best, history = best_hr1(out)
        curve = ", ".join(f"{v:.3f}" for v in history)
        print(f"{schedule}: best validation HR@1 {best:.3f} (curve: {curve})", flush=True)


if __name__ == "__main__":
    main()
