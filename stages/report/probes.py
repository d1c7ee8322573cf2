"""``python -m stages.report.probes [LABEL=]PATH... --out FIG.png``: the learning probes of several
fine-tunes in one figure (``plots.probes_figure``), with evaluations (e.g. the backbone zero-shot on
validation, from its ``predictions.parquet``) as reference lines of HR@1 and candidate NLL.

The lever study's figures in ``docs/learning.md`` are drawn with it; ``python -m stages.llm.study``
prints the same paths' numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl

from stages.llm.study import labelled, line_of
from stages.report.learning import Reference, learning_curves
from stages.report.plots import plot_probes


def figure(
    runs: dict[str, Path], evaluations: dict[str, dict[str, float]], out: Path, n_candidates: int | None
) -> Path:
    """The probes of fine-tune ``runs`` (label -> output dir) against steps and tokens, with each
    evaluation's HR@1 and NLL (label -> ``stages.llm.study.predictions_line``) as lines."""
    summaries = {label: json.loads((path / "summary.json").read_text()) for label, path in runs.items()}
    logs = {label: pl.read_parquet(path / "train_log.parquet") for label, path in runs.items()}
    curves, _ = learning_curves(summaries, logs)
    refs = {
        kind: [
            Reference(label, v)
            for label, line in evaluations.items()
            for k, v in line.items()
            if k.endswith(kind)
        ]
        for kind in ("hr1", "nll")
    }
    first = next(iter(summaries.values()))
    info = {"dataset": str(first.get("dataset")), "backbone": str(first.get("backbone")), "seeds": "0"}
    n = n_candidates or int(first.get("n_candidates") or 20)
    return plot_probes(curves, refs["hr1"], info, n, out, refs["nll"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.report.probes", description=__doc__)
    parser.add_argument(
        "paths", nargs="+", help="[LABEL=]a finetune output dir or an evaluation (dir or .parquet)"
    )
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument(
        "--candidates", type=int, help="candidates per row, for chance [default: the runs' own]"
    )
    args = parser.parse_args(argv)
    runs: dict[str, Path] = {}
    evaluations: dict[str, dict[str, float]] = {}
    for label, path in map(labelled, args.paths):
        is_run, line = line_of(path)
        if is_run:
            runs[label] = path
        else:
            evaluations[label] = line
    if not runs:
        parser.error("no fine-tune output among the paths (a directory with summary.json)")
    print(figure(runs, evaluations, args.out, args.candidates))


if __name__ == "__main__":
    main()
