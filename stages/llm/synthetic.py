"""Synthetic tasks only the item embeddings can solve: can the hybrid path carry the answer?

Every item's title is one of a few words (``red``, ``blue``, ...), and every validation and test
row offers one candidate of each word, so the title of the answer is all a row's text could give
away, and it gives nothing: which candidate is the target is said only by the SR item embeddings.
A text-only model (``text``, TALLRec) is at chance, 1 / len(words). Two tasks:

- ``marked``: each target's embedding carries a marker, a fixed direction of length ``marker``;
  no other candidate of a validation or test row has it. A model that reads the projected
  embedding on each candidate's placeholder answers with the word written before the marked one.
- ``nearest`` (relational, what LLaRA needs): a target's embedding is a noisy copy of the row's
  last history item's, ``E[history[-1]] + noise * N(0, I)`` (cosine about 0.9 at noise 0.5,
  about 0 with every other candidate). No candidate is special on its own: the model has to
  compare each candidate's embedding with the history's.

Training rows are drawn like any dataset's (negatives redrawn each epoch from all items, so words
may repeat within a row and a negative may be another row's target, ``fillers_per_row`` keeps that
rare). Every training row has a target of its own, and validation and test rows use items never
seen in training, so nothing about particular items can be memorised.

Why so few words: answering with one of twenty arbitrary titles means copying it out of the
prompt, which SmolLM2-135M does not learn in a few hundred steps (measured: validation at chance
after 150 steps with twenty one-token titles, in ``text`` and ``direct`` alike). With four fixed
words the answer is a choice among four tokens, and the check asks only whether the embeddings
reach the model where the titles are.

Item order (``--item-order``): LLaRA writes ``title [CansEmb]``; in a causal LM a title's tokens then
never see their item's embedding, and ``nearest`` stays at chance (docs/learning.md). Written
``[CansEmb] title`` (``token-first``, the default here, the ``cpu`` profile's) it learns in 50 steps.

``python -m stages.llm.synthetic --out DIR`` builds the data, prompts and embeddings, fine-tunes
``direct`` and ``text`` through ``python -m stages.llm`` (the finetune stage, DeepSpeed) and prints
each run's validation HR@1 against chance: a check, minutes long, before hours go into a real run.
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

from stages.metrics import PROBES

HISTORY = 3
"""Items in every row's history (unmarked, of the row's own split)."""
TASKS = ("marked", "nearest")


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic task and its size."""

    task: str = "marked"
    """``marked`` (a target carries a marker) or ``nearest`` (a target copies its last history item's)."""
    words: tuple[str, ...] = ("red", "blue", "green", "black")
    """The titles: item ``i`` is called ``words[i % len(words)]``; a row has one candidate of each."""
    train_rows: int = 2400
    """Training rows, each with its own target."""
    eval_rows: int = 100
    """Rows of the validation split, and of the test split."""
    fillers_per_row: int = 12
    """Unmarked items per row of a split (its histories and negatives). Many fillers keep marked
    items rare among the negatives drawn for training rows."""
    marker: float = 6.0
    """``marked``: length of the marker added to a target's embedding (the entries are standard normal)."""
    noise: float = 0.5
    """``nearest``: standard deviation of the noise added to the copied history embedding."""
    dim: int = 64
    """Width of the SR item embeddings."""
    seed: int = 0
    """Seed of embeddings, rows and the frozen candidates."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}: one of {', '.join(TASKS)}")
        if len(set(self.words)) != len(self.words) or len(self.words) < 2:
            raise ValueError(f"words must be at least two distinct titles, got {self.words}")
        if self.fillers_per_row < HISTORY + len(self.words):
            raise ValueError(f"fillers_per_row must be >= {HISTORY + len(self.words)}")

    @property
    def chance(self) -> float:
        return 1 / len(self.words)


Row = tuple[list[int], int, list[int] | None]
"""(history, target, candidates or None for a training row)."""


def _eval_candidates(target: int, fillers: np.ndarray, history: list[int], words: int, rng) -> list[int]:
    """The target and one unmarked filler of every other word, in random order."""
    chosen = [target]
    for word in range(words):
        if word != target % words:
            pool = fillers[(fillers % words == word) & ~np.isin(fillers, history)]
            chosen.append(int(rng.choice(pool)))
    return rng.permutation(chosen).tolist()


def synthetic_rows(config: SyntheticConfig) -> tuple[np.ndarray, dict[str, list[Row]]]:
    """Item embeddings (n_items, dim), rows in item-id order, and the rows of every split."""
    rng = np.random.default_rng([config.seed, 24])
    sizes = {"train": config.train_rows, "val": config.eval_rows, "test": config.eval_rows}
    n_items = sum(sizes.values()) * (1 + config.fillers_per_row)
    ids = rng.permutation(n_items)  # an item's id (and so its word) says nothing about its role
    table = rng.standard_normal((n_items, config.dim))
    direction = rng.standard_normal(config.dim)
    direction /= np.linalg.norm(direction)
    rows: dict[str, list[Row]] = {}
    first = 0
    for split, n in sizes.items():
        targets = ids[first : first + n]
        fillers = ids[first + n : first + n * (1 + config.fillers_per_row)]
        first += n * (1 + config.fillers_per_row)
        if config.task == "marked":
            table[targets] += config.marker * direction
        rows[split] = []
        for target in targets.tolist():
            history = rng.choice(fillers, size=HISTORY, replace=False).tolist()
            if config.task == "nearest":
                table[target] = table[history[-1]] + config.noise * rng.standard_normal(config.dim)
            candidates = None
            if split != "train":
                candidates = _eval_candidates(target, fillers, history, len(config.words), rng)
            rows[split].append((history, target, candidates))
    return table, rows


def write_synthetic(root: Path, config: SyntheticConfig = SyntheticConfig()) -> dict[str, Path]:
    """Write the prepared dataset and the item-embedding table; ``{"dataset", "embeddings"}`` dirs."""
    import torch

    from stages.item_embeddings import save_item_embeddings
    from stages.seqrec.data import EXAMPLE_COLUMNS, write_prepared

    table, by_split = synthetic_rows(config)
    titles = [config.words[i % len(config.words)] for i in range(len(table))]
    columns: dict[str, list] = {c: [] for c in EXAMPLE_COLUMNS}
    for split, rows in by_split.items():
        for history, target, candidates in rows:
            values = (split, len(columns["user_id"]), history, target, candidates)
            for key, value in zip(EXAMPLE_COLUMNS, values, strict=True):
                columns[key].append(value)
    name = f"synthetic-{config.task}"
    dataset = write_prepared(root / "dataset", titles, columns, name=name, seed=config.seed)
    embeddings = root / "embeddings"
    save_item_embeddings(torch.from_numpy(table).float(), embeddings, model=name, seed=config.seed)
    return {"dataset": dataset, "embeddings": embeddings}


def build_inputs(
    root: Path, backbone: str, config: SyntheticConfig = SyntheticConfig(), item_order: str = "token-first"
) -> dict[str, Path]:
    """The synthetic dataset, its embeddings and its prompts for ``backbone``, under ``root``."""
    from stages.llm import prompts

    paths = write_synthetic(root, config)
    out = root / "prompts"
    out.mkdir(parents=True, exist_ok=True)
    settings = prompts.PromptsConfig(backbone=backbone, item_order=item_order)
    prompts.run(settings, {"dataset": paths["dataset"]}, out)
    return {**paths, "prompts": out}


def finetune_settings(steps: int, backbone: str, lr: float) -> list[str]:
    """``--set`` overrides of the ``cpu`` profile (the chosen recipe: ``direct``, no LoRA dropout) for
    one synthetic run: 8 rows a step, ``steps`` steps, every val row, four validations."""
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
    command = [sys.executable, "-m", "stages.llm", "--profile", "cpu"]
    command += ["--prompts", str(inputs["prompts"]), "--embeddings", str(inputs["embeddings"])]
    command += ["--out", str(out)]
    for item in [*settings, f"schedule={schedule}"]:
        command += ["--set", item]
    return command


def validation_curve(out: Path) -> list[tuple[int, float]]:
    """(step, validation scoring HR@1) of a finished run, from its ``summary.json``."""
    history = json.loads((out / "summary.json").read_text())["selection"]["history"]
    return [(int(h["step"]), float(h["value"])) for h in history]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m stages.llm.synthetic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = SyntheticConfig()
    parser.add_argument("--out", type=Path, required=True, help="work directory (data, prompts, runs)")
    parser.add_argument("--task", choices=TASKS, default=defaults.task, help="[default: %(default)s]")
    parser.add_argument("--backbone", default="smollm2-135m", help="smollm2-135m, tiny-random or hf:DIR")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps of 8 rows per run")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the data and the runs")
    parser.add_argument("--noise", type=float, default=defaults.noise, help="nearest: noise of the copy")
    parser.add_argument("--train-rows", type=int, default=defaults.train_rows, help="[default: %(default)s]")
    parser.add_argument("--eval-rows", type=int, default=defaults.eval_rows, help="val and test rows each")
    orders = ["token-first", "title-first"]
    parser.add_argument(
        "--item-order",
        choices=orders,
        default=orders[0],
        help="title-first is LLaRA's [default: %(default)s]",
    )
    schedules = ["direct", "text", "curriculum"]
    parser.add_argument("--schedule", action="append", choices=schedules, help="[default: direct, text]")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="more finetune overrides (levers)"
    )
    args = parser.parse_args(argv)
    config = SyntheticConfig(
        task=args.task,
        seed=args.seed,
        noise=args.noise,
        train_rows=args.train_rows,
        eval_rows=args.eval_rows,
    )
    from stages.llm.study import run_line

    inputs = build_inputs(args.out, args.backbone, config, args.item_order)
    settings = [*finetune_settings(args.steps, args.backbone, args.lr), f"seed={args.seed}", *args.set]
    repo = str(Path(__file__).resolve().parents[2])  # the children import this checkout's stages
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}
    print(f"chance: {config.chance:.3f} (validation HR@1 by candidate scoring)", flush=True)
    for schedule in args.schedule or ["direct", "text"]:
        out = args.out / f"run-{schedule}"
        subprocess.run(finetune_command(inputs, out, schedule, settings), check=True, env=env)
        curve = ", ".join(f"{step}: {value:.2f}" for step, value in validation_curve(out))
        print(f"{schedule}: validation HR@1 by step {{{curve}}}", flush=True)
        for point in json.loads((out / "summary.json").read_text())["selection"]["history"]:
            probes = " ".join(f"{k} {point[k]:.3f}" for k in PROBES if k in point)
            print(f"{schedule}: step {point['step']}: {probes}", flush=True)
        print(f"{schedule}: study {json.dumps(run_line(out))}", flush=True)


if __name__ == "__main__":
    main()
