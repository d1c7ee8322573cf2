"""The finetune stage under DeepSpeed on CPU: ZeRO-2/3, kill -9 + resume, 2 processes (slow)."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from stages.llm.backbone import load_backbone
from stages.llm.data import PromptData
from stages.llm.model import load_trained
from tests.stages.llm._run import NO_DROPOUT, _kill_at, _latest_checkpoint_step, _run, _steps_run, _train


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_stage_runs_on_cpu_and_output_loads(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path, stage: int
) -> None:
    out = tmp_path / "out"
    losses = _train(llm_inputs, backbone_cache, out, f"zero_stage={stage}", "max_steps=4")
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    summary = json.loads((out / "summary.json").read_text())
    selection = summary["selection"]
    assert summary["steps"] == 4 and selection["metric"] == "scoring_hr1" and selection["last_step"] == 4
    assert [h["step"] for h in selection["history"]] == [4] and selection["best_step"] == 4
    projector = load_file(str(out / "projector.safetensors"))
    assert projector["net.0.weight"].shape == (64, 64)
    items = load_file(str(llm_inputs["embeddings"] / "item_embeddings.safetensors"))["item_embeddings"]
    backbone = load_backbone("tiny-random")
    model = load_trained(backbone, items, out)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # trained, not the zero init
    batch = PromptData(llm_inputs["prompts"], backbone.tokenizer).eval_batches("val", True, 2)[0]
    with torch.no_grad():
        logits = model.logits(
            batch.input_ids, batch.attention_mask, batch.history_items, batch.candidate_items, True
        )
    assert torch.isfinite(logits).all()


@pytest.mark.slow
def test_one_process_defaults_to_zero_0_with_the_zero_2_loss_curve(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path
) -> None:
    """ZeRO-0 is the one-process default (the fastest there); it trains exactly as ZeRO-2 does."""
    default = _train(llm_inputs, backbone_cache, tmp_path / "default", "max_steps=4", NO_DROPOUT)
    zero2 = _train(llm_inputs, backbone_cache, tmp_path / "zero2", "max_steps=4", "zero_stage=2", NO_DROPOUT)
    assert json.loads((tmp_path / "default" / "summary.json").read_text())["zero_stage"] == 0
    assert json.loads((tmp_path / "zero2" / "summary.json").read_text())["zero_stage"] == 2
    assert default == pytest.approx(zero2, rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_compiled_model_trains_as_the_eager_one(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path
) -> None:
    eager = _train(llm_inputs, backbone_cache, tmp_path / "eager", "max_steps=3", "val_rows=0", NO_DROPOUT)
    compiled = _train(
        llm_inputs,
        backbone_cache,
        tmp_path / "compiled",
        "max_steps=3",
        "val_rows=0",
        "compile=true",
        NO_DROPOUT,
    )
    assert compiled == pytest.approx(eager, rel=1e-4, abs=1e-5)


def test_kill_and_resume_reproduces_the_loss_curve(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path
) -> None:
    sets = ("max_steps=8", "checkpoint_every=2", 'lora={"dropout": 0.1}')
    reference = _train(llm_inputs, backbone_cache, tmp_path / "ref", *sets, checkpoints=tmp_path / "ref-ckpt")
    checkpoints = tmp_path / "ckpt"
    # "step 5" is printed once the checkpoint after step 4 is complete
    _kill_at(llm_inputs, backbone_cache, tmp_path / "out", *sets, checkpoints=checkpoints, line="step 5 ")
    start = _latest_checkpoint_step(checkpoints)  # 4, or 6 when its checkpoint beat the kill
    printed = _run(llm_inputs, backbone_cache, tmp_path / "out", *sets, checkpoints=checkpoints)
    # The rerun trained only the steps after the checkpoint: a run that ignored it and started from
    # step 0 would give the same curve (training is deterministic), but not these lines.
    assert start in (4, 6) and f"resumed from step-{start:07d} at step {start}" in printed, printed
    assert _steps_run(printed) == list(range(start, 8))
    resumed = pq.read_table(tmp_path / "out" / "train_log.parquet").column("loss").to_pylist()
    assert len(resumed) == len(reference) == 8
    assert resumed == pytest.approx(reference, rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_two_process_zero3_matches_one_process(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path
) -> None:
    common = ("zero_stage=3", "max_steps=3", "micro_batch=2", NO_DROPOUT)
    one = _train(llm_inputs, backbone_cache, tmp_path / "one", *common, "grad_accum=2")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port),
    ]
    two = _train(llm_inputs, backbone_cache, tmp_path / "two", *common, "grad_accum=1", launcher=torchrun)
    assert two == pytest.approx(one, rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_two_process_llara_official_under_zero3_completes(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path
) -> None:
    """Ranks disagree on hybrid micro-batches under llara-official; the run must not hang and must agree."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    torchrun += ["--master_addr", "127.0.0.1", "--master_port", str(port)]
    sets = (
        "zero_stage=3",
        "schedule=llara-official",
        "epochs=3",
        "max_steps=6",
        "micro_batch=2",
        "eval_every=3",
    )
    losses = _train(llm_inputs, backbone_cache, tmp_path / "out", *sets, "grad_accum=1", launcher=torchrun)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(losses) == 6 and summary["world_size"] == 2 and 0 < summary["hybrid_fraction"] < 1
    assert [h["step"] for h in summary["selection"]["history"]] == [3, 6]
    hybrid = pq.read_table(tmp_path / "out" / "train_log.parquet").column("hybrid").to_pylist()
    assert 0.5 in hybrid  # a step where the two ranks' micro-batches differed in kind
