"""`llara finetune --nproc-per-node 2`: torchrun from the pipeline, on CPU with gloo (slow).

The 2-process run with grad_accum=1 trains on the same micro-batches as one process with
grad_accum=2 (ranks take ``index % world == rank``); dropout is off because each rank draws its
own dropout stream.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from stages.launch import free_port
from tests.flows.test_cli_finetune import llara, store_with_inputs  # noqa: F401 - the fixture

REPO = Path(__file__).resolve().parents[2]
NO_DROPOUT = ("--set", 'lora={"dropout": 0.0}')
pytestmark = pytest.mark.slow


def _copy(fixture: tuple[Path, str, str], root: Path) -> tuple[Path, tuple[str, ...]]:
    """A copy of the fixture's store and the finetune arguments on its artifacts."""
    source, prompt_dir, embeddings = fixture
    store = root / "store"
    shutil.copytree(source, store)
    prompts, emb = (str(store / "objects" / Path(p).name) for p in (prompt_dir, embeddings))
    return store, ("finetune", "--profile", "smoke", "--prompts", prompts, "--embeddings", emb, *NO_DROPOUT)


def _losses(artifact: Path) -> list[float]:
    return pq.read_table(artifact / "train_log.parquet").column("loss").to_pylist()


def _history(artifact: Path) -> list[float]:
    summary = json.loads((artifact / "summary.json").read_text())
    return [h["value"] for h in summary["selection"]["history"]]


@pytest.fixture(scope="module")
def one_process(store_with_inputs, backbone_cache, tmp_path_factory) -> Path:  # noqa: F811
    """The 1-process run with the 2-process run's effective batch (grad_accum 2), in its own store."""
    store, finetune = _copy(store_with_inputs, tmp_path_factory.mktemp("one"))
    result = llara(*finetune, "--set", "grad_accum=2", store=store, cache=backbone_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


def test_two_processes_give_world_size_2_and_the_one_process_loss_curve(
    store_with_inputs,  # noqa: F811
    backbone_cache,
    one_process,
    tmp_path,  # noqa: F811
) -> None:
    store, finetune = _copy(store_with_inputs, tmp_path)
    result = llara(*finetune, "--nproc-per-node", "2", store=store, cache=backbone_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    two = Path(result.stdout.strip().splitlines()[-1])
    assert "[rank 1] " in result.stderr and "[rank 0] step 0 " in result.stderr  # both ranks' logs
    assert json.loads((two / "summary.json").read_text())["world_size"] == 2
    assert json.loads((one_process / "summary.json").read_text())["world_size"] == 1
    assert two.name == one_process.name  # the world size is a resource, not part of the id
    assert len(_losses(two)) > 2
    assert _losses(two) == pytest.approx(_losses(one_process), rel=1e-4, abs=1e-5)
    assert _history(two) == pytest.approx(_history(one_process), rel=1e-4, abs=1e-5)
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["config"]["config"]["grad_accum"] == 2 and manifest["world_size"] == 2


def _rank_process(parent: psutil.Process, rank: str) -> psutil.Process | None:
    for child in parent.children(recursive=True):
        try:
            if "stages.worker" in " ".join(child.cmdline()) and child.environ().get("RANK") == rank:
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def test_a_killed_rank_fails_the_stage_in_one_line_and_a_rerun_resumes(
    store_with_inputs,  # noqa: F811
    backbone_cache,
    one_process,
    tmp_path,  # noqa: F811
) -> None:
    store, finetune = _copy(store_with_inputs, tmp_path)
    args = (*finetune, "--set", "checkpoint_every=2", "--nproc-per-node", "2")
    env = {**os.environ, "LLARA_STORE": str(store), "PYTHONPATH": str(REPO)}
    env["LLARA_BACKBONE_CACHE"] = str(backbone_cache)
    env.update(OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    lines = []
    try:
        for line in proc.stderr:  # "step 3" is printed once the checkpoint after step 2 is complete
            lines.append(line)
            if "[rank 0] step 3 " in line:
                victim = _rank_process(psutil.Process(proc.pid), "1")
                assert victim is not None
                victim.send_signal(signal.SIGKILL)
                break
        rest = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    errors = [line for line in rest.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1, "".join(lines[-20:]) + rest[-3000:]
    assert len(errors) == 1, rest[-3000:]
    assert "rank 1 of 2 died without an error, exit code -9 (SIGKILL)" in errors[0]
    assert not list((store / "objects").glob(f"{one_process.name}*"))  # nothing half-published
    result = llara(*args, store=store, cache=backbone_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    # The kill lands once step 2's checkpoint is complete; on a busy machine the log reaches us
    # late and the run may have saved step 4's too: either way the rerun resumes, not restarts.
    resumed_at = re.search(r"resumed from step-(\d+)", result.stderr)
    assert resumed_at and int(resumed_at.group(1)) in (2, 4), result.stderr[-4000:]
    resumed = Path(result.stdout.strip().splitlines()[-1])
    assert _losses(resumed) == pytest.approx(_losses(one_process), rel=1e-4, abs=1e-5)


def test_two_nodes_on_localhost_train_as_two_processes(
    store_with_inputs,  # noqa: F811
    backbone_cache,
    one_process,
    tmp_path,
) -> None:
    """Two launcher agents (``--nnodes 2``, one process each) on one store: node 0 publishes, node 1
    returns the same artifact, and the run is the 2-process one."""
    store, finetune = _copy(store_with_inputs, tmp_path)
    env = {**os.environ, "LLARA_STORE": str(store), "PYTHONPATH": str(REPO)}
    env.update(LLARA_BACKBONE_CACHE=str(backbone_cache), OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu")
    port = str(free_port())
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *finetune, "--nnodes", "2", "--node-rank", str(rank)]
            + ["--master-addr", "127.0.0.1", "--master-port", port],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [node.communicate(timeout=600) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
    for node, (_, stderr) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, stderr[-3000:]
    paths = [Path(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert paths[0] == paths[1] and paths[0].name == one_process.name
    assert json.loads((paths[0] / "summary.json").read_text())["world_size"] == 2
    assert _losses(paths[0]) == pytest.approx(_losses(one_process), rel=1e-4, abs=1e-5)
