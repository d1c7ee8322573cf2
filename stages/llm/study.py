"""The lever study's numbers: one line per fine-tune run (probes at its last validation) and the
same probes of an evaluation's ``predictions.parquet`` (e.g. the backbone zero-shot on validation).

``python -m stages.llm.study PATH...``: PATH a finetune output (``summary.json``) or an evaluate
output (``predictions.parquet`` with candidate scores); prints one JSON line each. The study table
in ``docs/learning.md`` is made of these lines. ``--figure OUT.png`` also draws the fine-tunes'
probes (``stages.report.plots.probes_figure``), each labelled ``LABEL=PATH`` where given so, and
an evaluation's HR@1 and NLL as reference lines (e.g. the backbone zero-shot on validation).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from stages.llm.selection import PROBES
from stages.llm.validation import candidate_probes


def run_line(out: Path) -> dict[str, float]:
    """A fine-tune's rows trained, wall seconds (steps and validations), best validation HR@1 and
    the probes of its last validation."""
    summary = json.loads((out / "summary.json").read_text())
    history = summary["selection"]["history"]
    last = history[-1]
    return {
        "rows": summary["rows_seen"],
        "wall_s": round(summary["train_seconds"] + sum(h.get("seconds", 0.0) for h in history)),
        "best_val_hr1": max(h["value"] for h in history),
        **{k: last[k] for k in PROBES if k in last},
    }


def predictions_line(path: Path) -> dict[str, float]:
    """HR@1, MRR and candidate NLL of a scoring evaluation's ``predictions.parquet``."""
    table = pq.read_table(path, columns=["split", "scores", "target_index"])
    scores = np.array(table.column("scores").to_pylist(), dtype=np.float64)  # (rows, candidates)
    target = table.column("target_index").to_numpy().astype(np.int64)
    hit, reciprocal, nll = candidate_probes(scores, target)
    split = "/".join(sorted(set(table.column("split").to_pylist())))
    return {
        "rows": len(target),
        f"{split}_hr1": hit.mean(),
        f"{split}_mrr": reciprocal.mean(),
        f"{split}_nll": nll.mean(),
    }


def figure(
    runs: dict[str, Path],
    evaluations: dict[str, dict[str, float]],
    out: Path,
    n_candidates: int | None = None,
) -> Path:
    """The probes of fine-tune ``runs`` (label -> output dir) against steps and tokens, with each
    evaluation's HR@1 and NLL (label -> ``predictions_line``) as reference lines."""
    import polars as pl

    from stages.report.learning import Reference, learning_curves
    from stages.report.plots import plot_probes

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
    n_candidates = n_candidates or int(first.get("n_candidates") or 20)
    return plot_probes(curves, refs["hr1"], info, n_candidates, out, refs["nll"])


def _labelled(text: str) -> tuple[str, Path]:
    """``LABEL=PATH`` or ``PATH`` (labelled by its name)."""
    label, sep, path = text.partition("=")
    return (label, Path(path)) if sep else (Path(text).name, Path(text))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.llm.study", description=__doc__)
    parser.add_argument(
        "paths", nargs="+", help="[LABEL=]a finetune output dir or an evaluation (dir or .parquet)"
    )
    parser.add_argument("--figure", type=Path, help="also draw the fine-tunes' probes into this PNG")
    parser.add_argument(
        "--candidates", type=int, help="candidates per row, for chance [default: the runs' own]"
    )
    args = parser.parse_args(argv)
    runs: dict[str, Path] = {}
    evaluations: dict[str, dict[str, float]] = {}
    for label, path in map(_labelled, args.paths):
        if path.is_dir() and (path / "summary.json").is_file():
            runs[label], line = path, run_line(path)
        else:
            line = predictions_line(path / "predictions.parquet" if path.is_dir() else path)
            evaluations[label] = line
        rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in line.items()}
        print(json.dumps({"label": label, "path": str(path), **rounded}))
    if args.figure is not None and runs:
        print(figure(runs, evaluations, args.figure, args.candidates))


if __name__ == "__main__":
    main()
