"""``flows.offline_rows``: rows run in child processes, results land on disk, the budget skips rows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.offline_rows import finetune_row, run_plan

pytestmark = pytest.mark.slow


def test_plan_trains_evaluates_and_skips_past_budget(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLARA_BACKBONE_CACHE", str(backbone_cache))
    common = {"prompts": str(llm_inputs["prompts"]), "embeddings": str(llm_inputs["embeddings"])}
    text_row = finetune_row(
        "tallrec",
        common["prompts"],
        common["embeddings"],
        "sasrec",
        "text",
        0,
        "movie",
        {"max_steps": 2},
        "smoke",
    )
    plan = [
        {**text_row, "modes": ["scoring"], "min_s": 0},
        {**common, "name": "zero", "row": "zero-shot", "modes": ["scoring"], "backbone": "tiny-random"},
        {**common, "name": "never", "row": "zero-shot", "backbone": "tiny-random", "min_s": 10**6},
    ]
    run_plan(plan, tmp_path / "out", budget_s=3600, keep_weights=False)

    status = [json.loads(line) for line in (tmp_path / "out" / "status.jsonl").read_text().splitlines()]
    assert [s["status"] for s in status[:2]] == ["ok", "ok"]
    assert status[2]["status"].startswith("skipped")
    assert not (tmp_path / "out" / "never").exists()

    trained = tmp_path / "out" / "tallrec"
    assert sorted(p.name for p in (trained / "finetune").iterdir()) == ["summary.json", "train_log.parquet"]
    assert not (trained / "checkpoints").exists()  # kept only with --keep-weights
    summary = json.loads((trained / "finetune" / "summary.json").read_text())
    assert (summary["steps"], summary["schedule"], summary["hybrid_fraction"]) == (2, "text", 0.0)
    metrics = pq.read_table(trained / "eval-scoring" / "metrics.parquet").to_pylist()
    assert {m["row"] for m in metrics} == {"TALLRec"} and {m["mode"] for m in metrics} == {"scoring"}
    zero = json.loads((tmp_path / "out" / "zero" / "row.json").read_text())
    assert "finetune" not in zero and 0.0 <= zero["eval"]["scoring"]["hr@1"]["mean"] <= 1.0

    # The same plan over the same directory (a later lease): finished rows are not run again.
    run_plan(plan, tmp_path / "out", budget_s=3600, keep_weights=False)
    again = [json.loads(line) for line in (tmp_path / "out" / "status.jsonl").read_text().splitlines()][3:]
    assert [s["status"].split(" (")[0] for s in again[:2]] == ["done earlier", "done earlier"]
    assert again[2]["status"].startswith("skipped")
