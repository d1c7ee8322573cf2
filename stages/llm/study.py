"""The lever study's numbers: one line per fine-tune run (probes at its last validation) and the
same probes of an evaluation's ``predictions.parquet`` (e.g. the backbone zero-shot on validation).

``python -m stages.llm.study PATH...``: PATH a finetune output (``summary.json``) or an evaluate
output (``predictions.parquet`` with candidate scores); prints one JSON line each. The study table
in ``docs/learning.md`` is made of these lines.
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.llm.study", description=__doc__)
    parser.add_argument(
        "paths", nargs="+", type=Path, help="finetune output dirs or predictions.parquet files"
    )
    args = parser.parse_args(argv)
    for path in args.paths:
        if path.is_dir() and (path / "summary.json").is_file():
            line = run_line(path)
        elif path.is_dir() and (path / "predictions.parquet").is_file():
            line = predictions_line(path / "predictions.parquet")
        else:
            line = predictions_line(path)
        print(
            json.dumps(
                {
                    "path": str(path),
                    **{k: round(v, 4) if isinstance(v, float) else v for k, v in line.items()},
                }
            )
        )


if __name__ == "__main__":
    main()
