"""The report says how much each LLM row trained, marks rows under one epoch and then opens by
saying that its LLM rows are a smoke test of the method."""

from __future__ import annotations

import json
from pathlib import Path

from stages.llm.amount import training_amount
from stages.report.report import ReportConfig, run
from stages.report.training import FOOTNOTE, OPENING
from tests.stages.report.test_report import metrics_dir

LABELS = {"dataset": "movielens", "mode": "scoring", "split": "test", "backbone": "tiny-random"}


def _llm_row(root: Path, row: str, steps: int, batch: int, train_rows: int) -> Path:
    d = metrics_dir(root, row, row, "scoring", 0, 0.1)
    run_summary = {"steps": steps, "rows_seen": steps * batch, "train_tokens": steps * batch * 250,
                   "dataset_train_rows": train_rows, "backbone": "tiny-random"}
    doc = {**LABELS, "row": row, "seed": 0, "metrics": {}, "training": training_amount(run_summary)}
    (d / "metrics.json").write_text(json.dumps(doc))
    return d


def _report(tmp_path: Path, inputs: dict[str, Path]) -> list[str]:
    run(ReportConfig(), inputs, tmp_path / "out")
    return (tmp_path / "out" / "report.md").read_text().splitlines()


def test_a_row_under_one_epoch_is_marked_and_the_report_opens_with_the_smoke_sentence(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    inputs = {
        "smoke": _llm_row(src, "LLaRA(SASRec)", steps=32, batch=4, train_rows=85_000),
        "full": _llm_row(src, "LLaRA(GRU4Rec)", steps=3_320, batch=128, train_rows=85_000),
        "sr": metrics_dir(src, "sr", "SASRec", "scoring", 0, 0.4),
    }
    lines = _report(tmp_path, inputs)
    assert lines[0] == "# LLaRA reproduction" and lines[2] == OPENING.format(paper=5)
    smoke = next(line for line in lines if line.startswith("| LLaRA(SASRec) |"))
    assert "| 32 steps, 128 rows, 32k tokens = 0.0015 epochs (0.03 % of 5) † |" in smoke
    full = next(line for line in lines if line.startswith("| LLaRA(GRU4Rec) |"))
    assert "| 3320 steps, 425k rows, 106M tokens = 5 epochs (1e+02 % of 5) |" in full
    assert "| SASRec | scoring |" in "\n".join(lines) and FOOTNOTE in lines


def test_no_opening_sentence_when_every_llm_row_trained_an_epoch(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    lines = _report(tmp_path, {"full": _llm_row(src, "LLaRA(SASRec)", 700, 128, 85_000)})
    assert lines[2] != OPENING.format(paper=5) and FOOTNOTE not in lines and "†" not in "\n".join(lines)


def test_the_precision_column_names_the_evaluation_and_a_differing_fine_tune(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    inputs = {}
    for name, evaluated, trained in (("LLaRA(SASRec)", "bf16", "bf16"), ("TALLRec", "bf16", "fp32")):
        d = _llm_row(src, name, steps=32, batch=4, train_rows=85_000)
        doc = json.loads((d / "metrics.json").read_text())
        doc["precision"], doc["training"]["precision"] = evaluated, trained
        (d / "metrics.json").write_text(json.dumps(doc))
        inputs[name] = d
    lines = _report(tmp_path, inputs)
    llara = next(line for line in lines if line.startswith("| LLaRA(SASRec) |"))
    tallrec = next(line for line in lines if line.startswith("| TALLRec |"))
    assert "| tiny-random | bf16 | 0 |" in llara
    assert "| tiny-random | bf16 (trained in fp32) | 0 |" in tallrec
