"""A long run outlives its process: killed at step k and rerun, it continues from k (finetune stage,
DeepSpeed, ``python -m stages.llm`` in a subprocess, kill -9)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.stages.llm._run import REPO, _args, _env, _kill_at, _train

# Validation every 2 steps on the 3 val rows, a checkpoint every 2 steps, dropout on (its RNG
# stream must continue too), 8 steps.
SETS = ("max_steps=8", "eval_every=2", "checkpoint_every=2", 'lora={"dropout": 0.1}')
STEP_LINE = re.compile(r"\bstep (\d+) loss ")
RESUMED_LINE = re.compile(r"\bresumed from step-\d+ at step (\d+)")


def _resume(inputs: dict[str, Path], cache: Path, out: Path, checkpoints: Path) -> str:
    """Rerun the same command; return what it printed."""
    proc = subprocess.run(
        [sys.executable, *_args(inputs, out, *SETS, checkpoints=checkpoints)],
        env=_env(cache),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _weights(out: Path) -> dict[str, torch.Tensor]:
    files = ("adapter/adapter_model.safetensors", "projector.safetensors", "token_rows.safetensors")
    return {f"{name}:{k}": v for name in files for k, v in load_file(str(out / name)).items()}


def test_a_run_killed_at_step_k_resumes_at_k_with_the_uninterrupted_curve_and_weights(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path
) -> None:
    _train(llm_inputs, backbone_cache, tmp_path / "ref", *SETS, checkpoints=tmp_path / "ref-ckpt")
    reference = json.loads((tmp_path / "ref" / "summary.json").read_text())

    checkpoints = tmp_path / "ckpt"
    # "step 4" is printed once the checkpoint after 4 steps is complete; the kill lands before the
    # one after 6 (a step, a validation and a save later) or, at worst, just after it.
    _kill_at(llm_inputs, backbone_cache, tmp_path / "out", *SETS, checkpoints=checkpoints, line="step 4 ")
    printed = _resume(llm_inputs, backbone_cache, tmp_path / "out", checkpoints)

    resumed = RESUMED_LINE.search(printed)
    assert resumed, "the rerun did not resume from the checkpoint"
    k = int(resumed.group(1))
    assert k in (4, 6)
    # It trained only the remaining steps: a rerun from scratch would print steps 0 .. k-1 too.
    assert [int(s) for s in STEP_LINE.findall(printed)] == list(range(k, 8))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["resumed_at"] == [k] and reference["resumed_at"] == []
    assert summary["steps"] == reference["steps"] == 8

    # The learning curve and the selection continue as if nothing had happened ...
    history, expected = summary["selection"]["history"], reference["selection"]["history"]
    assert [h["step"] for h in history] == [h["step"] for h in expected] == [2, 4, 6, 8]
    assert [h["value"] for h in history] == pytest.approx([h["value"] for h in expected])
    assert summary["selection"]["best_step"] == reference["selection"]["best_step"]
    assert summary["last_loss"] == pytest.approx(reference["last_loss"], rel=1e-5)
    # ... and the kept weights (LoRA, projector, special-token rows) are the uninterrupted run's.
    got, want = _weights(tmp_path / "out"), _weights(tmp_path / "ref")
    assert got.keys() == want.keys() and len(got) > 3
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
