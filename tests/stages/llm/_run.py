"""Run the finetune stage as users do (``python -m stages.llm``, maybe under torchrun), in a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[3]
NO_DROPOUT = 'lora={"dropout": 0.0}'


def _env(cache: Path) -> dict[str, str]:
    env = dict(
        os.environ,
        LLARA_BACKBONE_CACHE=str(cache),
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS="1",
        DS_ACCELERATOR="cpu",
        PYTHONUNBUFFERED="1",
    )
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _args(inputs: dict[str, Path], out: Path, *sets: str, checkpoints: Path | None = None) -> list[str]:
    args = [
        "-m",
        "stages.llm",
        "--profile",
        "smoke",
        "--prompts",
        str(inputs["prompts"]),
        "--embeddings",
        str(inputs["embeddings"]),
        "--out",
        str(out),
    ]
    if checkpoints is not None:
        args += ["--checkpoint-dir", str(checkpoints), "--resume"]
    if not any(item.startswith("precision=") for item in sets):
        # These tests compare runs number for number (ranks, ZeRO stages, resumes): in fp32, as
        # written; the bf16 path has tests of its own (tests/stages/llm/test_llm_mixed_precision.py).
        sets = ("precision=fp32", *sets)
    for item in sets:
        args += ["--set", item]
    return args


def _train(
    inputs: dict[str, Path],
    cache: Path,
    out: Path,
    *sets: str,
    checkpoints: Path | None = None,
    launcher: list[str] | None = None,
) -> list[float]:
    """The loss curve (``train_log.parquet``) of a finished run."""
    _run(inputs, cache, out, *sets, checkpoints=checkpoints, launcher=launcher)
    return pq.read_table(out / "train_log.parquet").column("loss").to_pylist()


def _run(
    inputs: dict[str, Path],
    cache: Path,
    out: Path,
    *sets: str,
    checkpoints: Path | None = None,
    launcher: list[str] | None = None,
) -> str:
    """Run the stage to the end; what it printed on stdout."""
    command = (launcher or [sys.executable]) + _args(inputs, out, *sets, checkpoints=checkpoints)
    proc = subprocess.Popen(
        command,
        env=_env(cache),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a timeout kills the launcher and its workers together
    )
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    return stdout


def _steps_run(stdout: str) -> list[int]:
    """The optimizer steps this process trained, from its ``step N loss ...`` log lines."""
    return [int(step) for step in re.findall(r"\bstep (\d+) loss ", stdout)]


def _latest_checkpoint_step(checkpoints: Path) -> int:
    """The step of the checkpoint a resume starts from (DeepSpeed's ``latest`` tag, ``step-0000004``)."""
    return int((checkpoints / "latest").read_text().strip().removeprefix("step-"))


def _kill_at(
    inputs: dict[str, Path], cache: Path, out: Path, *sets: str, checkpoints: Path, line: str
) -> None:
    """Start a resumable run and kill -9 it when it logs a finetune line starting with ``line``."""
    command = [sys.executable] + _args(inputs, out, *sets, checkpoints=checkpoints)
    proc = subprocess.Popen(
        command, env=_env(cache), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    for printed in proc.stdout:
        if f"llara.finetune: {line}" in printed:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and not (out / "summary.json").exists()
