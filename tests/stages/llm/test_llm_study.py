"""The lever study's lines and figure (``python -m stages.llm.study``) from run and evaluation outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.llm.study import main, predictions_line, run_line


def _run_dir(root: Path, fit: float) -> Path:
    root.mkdir(parents=True)
    history = [
        {"step": s, "epoch": 0, "value": v, "seconds": 2.0, "val_hr1": v, "val_mrr": v, "val_nll": 1.0,
         "fit_hr1": fit, "fit_mrr": fit, "fit_nll": 0.5}
        for s, v in ((2, 0.25), (4, 0.5))
    ]  # fmt: skip
    summary = {"rows_seen": 32, "train_seconds": 10.0, "n_candidates": 4, "dataset": "d", "backbone": "b",
               "selection": {"metric": "scoring_hr1", "best_step": 4, "history": history}}  # fmt: skip
    (root / "summary.json").write_text(json.dumps(summary))
    log = {"step": [0, 1, 2, 3], "loss": [1.0] * 4, "hybrid": [1.0] * 4, "tokens": [100] * 4}
    pq.write_table(pa.table(log), root / "train_log.parquet")
    return root


def test_a_run_line_is_its_rows_wall_time_and_last_probes(tmp_path: Path) -> None:
    line = run_line(_run_dir(tmp_path / "run", fit=0.75))
    assert line["rows"] == 32 and line["wall_s"] == 14 and line["best_val_hr1"] == 0.5
    assert line["val_hr1"] == 0.5 and line["fit_hr1"] == 0.75 and line["fit_nll"] == 0.5


def test_an_evaluation_line_is_hr1_mrr_and_candidate_nll_of_its_scores(tmp_path: Path) -> None:
    path = tmp_path / "predictions.parquet"
    scores = [[0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]]
    pq.write_table(pa.table({"split": ["val", "val"], "scores": scores, "target_index": [0, 0]}), path)
    line = predictions_line(path)
    assert line["rows"] == 2 and line["val_hr1"] == 0.5  # the all-equal row is a tie: no hit
    assert line["val_nll"] == pytest.approx((math.log(4) + -math.log(math.exp(3) / (math.exp(3) + 3))) / 2)


def test_the_cli_prints_a_line_per_path(tmp_path: Path, capsys) -> None:
    path = tmp_path / "zs.parquet"
    pq.write_table(pa.table({"split": ["val"], "scores": [[1.0, 0.0]], "target_index": [0]}), path)
    main([f"first={_run_dir(tmp_path / 'a', 0.5)}", f"zero-shot={path}"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [x["label"] for x in lines] == ["first", "zero-shot"] and lines[1]["val_hr1"] == 1.0
