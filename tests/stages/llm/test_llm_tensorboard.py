"""The finetune stage's TensorBoard events: the values of its train log and validation history,
written while it runs, and whole after a kill and a resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from stages.metrics import PROBES
from tests.stages._tensorboard import scalars
from tests.stages.llm._run import _kill_at, _train

RUN = Path("tensorboard") / "finetune-random-curriculum-seed0"  # the test embeddings' "model": random


def _expected(out: Path) -> dict[str, list[tuple[int, float]]]:
    """The curves as ``train_log.parquet`` and ``summary.json`` hold them, in float32 as events do."""
    log = pq.read_table(out / "train_log.parquet").to_pylist()
    selection = json.loads((out / "summary.json").read_text())["selection"]
    f32 = np.float32
    curves = {
        f"train/{name}": [(r["step"], f32(r[name])) for r in log] for name in ("loss", "lr", "hybrid")
    }
    curves["train/tokens_per_s"] = [(r["step"], f32(r["tokens"] / r["seconds"])) for r in log]
    curves["train/busy_cores"] = [(r["step"], f32(r["cpu_seconds"] / r["seconds"])) for r in log]
    curves["train/page_faults"] = [(r["step"], f32(r["page_faults"])) for r in log]
    curves[f"val/{selection['metric']}"] = [(h["step"], f32(h["value"])) for h in selection["history"]]
    for probe in PROBES:  # the learning probes of every validation
        curves[f"probe/{probe}"] = [(h["step"], f32(h[probe])) for h in selection["history"]]
    curves["machine/matmul_gflops"] = [(h["step"], f32(h["matmul_gflops"])) for h in selection["history"]]
    return curves


def test_events_hold_the_train_log_and_the_validations(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _train(llm_inputs, backbone_cache, out, "max_steps=4", "eval_every=2")
    expected = _expected(out)
    assert len(expected["train/loss"]) == 4 and [s for s, _ in expected["val/scoring_hr1"]] == [2, 4]
    assert scalars(out / RUN) == expected


def test_events_are_written_as_it_runs_and_a_resumed_run_holds_them_all(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path
) -> None:
    out, checkpoints = tmp_path / "out", tmp_path / "ckpt"
    sets = ("max_steps=8", "checkpoint_every=2", "eval_every=3")
    _kill_at(llm_inputs, backbone_cache, out, *sets, checkpoints=checkpoints, line="step 5 ")
    killed = scalars(out / RUN)  # the killed run's events, flushed step by step
    assert [s for s, _ in killed["train/loss"]][:6] == [0, 1, 2, 3, 4, 5]
    assert [s for s, _ in killed["val/scoring_hr1"]][:1] == [3]
    _train(llm_inputs, backbone_cache, out, *sets, checkpoints=checkpoints)
    expected = _expected(out)
    assert [s for s, _ in expected["train/loss"]] == list(range(8))
    assert scalars(out / RUN) == expected  # the restored steps replayed, each step once
