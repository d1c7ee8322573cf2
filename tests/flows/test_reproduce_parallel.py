"""`llara run --max-parallel 2`: the two fine-tunes overlap in time and the report is the sequential
run's (slow: two smoke pipelines)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
RUN = (
    "run",
    "--profile",
    "smoke",
    "--sr-baseline",
    "sasrec",
    "--llara-sr",
    "sasrec",
    "--llara-sr",
    "gru4rec",
)


def _run(store: Path, cache: Path, *extra: str) -> Path:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LLARA_BACKBONE_CACHE": str(cache)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "PREFECT_API_URL"):
        env.pop(key, None)
    command = [sys.executable, "-m", "flows.cli", *RUN, "--store", str(store), *extra]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1].removeprefix("report: ")).parent


def _spans(store: Path, stage: str) -> list[tuple[datetime, datetime]]:
    spans = []
    for path in (store / "objects").glob("*/manifest.json"):
        manifest = json.loads(path.read_text())
        if manifest["stage"] == stage:
            start = datetime.fromisoformat(manifest["created"])
            spans.append((start, start + timedelta(seconds=manifest["wall_time_s"])))
    return sorted(spans)


@pytest.mark.slow
def test_two_branches_overlap_and_the_report_is_the_sequential_one(
    tmp_path: Path, backbone_cache: Path
) -> None:
    sequential = _run(tmp_path / "seq", backbone_cache)
    parallel = _run(tmp_path / "par", backbone_cache, "--max-parallel", "2")
    (a_start, a_end), (b_start, b_end) = _spans(tmp_path / "par", "finetune")
    assert b_start < a_end and a_start < b_end  # the two fine-tunes ran at the same time
    (s_start, s_end), (t_start, _) = _spans(tmp_path / "seq", "finetune")
    assert s_end <= t_start  # and one after the other in a sequential run
    assert parallel.name == sequential.name
    assert (parallel / "report.md").read_text() == (sequential / "report.md").read_text()
    rows = [pq.read_table(d / "results.parquet").to_pylist() for d in (sequential, parallel)]
    assert json.dumps(rows[0], sort_keys=True) == json.dumps(rows[1], sort_keys=True)  # NaN equals NaN
