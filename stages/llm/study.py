"""The lever study's numbers: one line per fine-tune run (probes at its last validation) and the
same probes of an evaluation's ``predictions.parquet`` (e.g. the backbone zero-shot on validation).

``python -m stages.llm.study [LABEL=]PATH...``: PATH a finetune output (``summary.json``) or an
evaluate output (its directory or ``predictions.parquet``, with candidate scores); prints one JSON
line each. The study tables in ``docs/learning.md`` are made of these lines; ``python -m
stages.report.probes`` draws the same paths.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq

from stages.metrics import PROBES, candidate_probes


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
    import numpy as np

    table = pq.read_table(path, columns=["split", "scores", "target_index"])
    scores = np.array(table.column("scores").to_pylist(), dtype=np.float64)  # (rows, candidates)
    target = table.column("target_index").to_numpy().astype(np.int64)
    hit, reciprocal, nll = candidate_probes(scores, target)
    split = "/".join(sorted(set(table.column("split").to_pylist())))
    return {
        "rows": len(target),
        f"{split}_hr1": float(hit.mean()),
        f"{split}_mrr": float(reciprocal.mean()),
        f"{split}_nll": float(nll.mean()),
    }


def labelled(text: str) -> tuple[str, Path]:
    """``LABEL=PATH`` or ``PATH`` (labelled by its name)."""
    label, sep, path = text.partition("=")
    return (label, Path(path)) if sep else (Path(text).name, Path(text))


def line_of(path: Path) -> tuple[bool, dict[str, float]]:
    """(is a fine-tune, its line) of a path given on the command line."""
    if path.is_dir() and (path / "summary.json").is_file():
        return True, run_line(path)
    return False, predictions_line(path / "predictions.parquet" if path.is_dir() else path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.llm.study", description=__doc__)
    parser.add_argument(
        "paths", nargs="+", help="[LABEL=]a finetune output dir or an evaluation (dir or .parquet)"
    )
    args = parser.parse_args(argv)
    for label, path in map(labelled, args.paths):
        _, line = line_of(path)
        rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in line.items()}
        print(json.dumps({"label": label, "path": str(path), **rounded}))


if __name__ == "__main__":
    main()
