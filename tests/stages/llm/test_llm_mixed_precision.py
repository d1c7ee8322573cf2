"""bf16 mixed precision of the finetune stage, through DeepSpeed as users run it, and LoRA's dropout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from stages.llm.bit_dropout import BitDropout, use_bit_dropout
from tests.stages.llm._run import _train


def test_bf16_finetune_keeps_trainables_and_adam_state_in_fp32(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    sets = ("max_steps=2", "checkpoint_every=2", "schedule=direct")
    bf16 = _train(
        llm_inputs, backbone_cache, tmp_path / "bf16", "precision=bf16", *sets, checkpoints=checkpoints
    )
    fp32 = _train(llm_inputs, backbone_cache, tmp_path / "fp32", "precision=fp32", *sets)
    assert json.loads((tmp_path / "bf16" / "summary.json").read_text())["precision"] == "bf16"
    assert json.loads((tmp_path / "fp32" / "summary.json").read_text())["precision"] == "fp32"
    # The same rows, masks and init: bf16 matmuls move the loss a little, never a lot.
    assert bf16 != fp32 and bf16 == pytest.approx(fp32, rel=0.02)

    tag = (checkpoints / "latest").read_text().strip()
    state = torch.load(checkpoints / tag / "mp_rank_00_model_states.pt", weights_only=False)
    lora = state["module"]  # PromptLM.state_dict: the trainable tensors only
    assert lora and all("lora_" in name and t.dtype == torch.float32 for name, t in lora.items())
    adam = [t for s in state["optimizer"]["state"].values() for t in (s["exp_avg"], s["exp_avg_sq"])]
    assert len(adam) == 2 * len(lora) and all(t.dtype == torch.float32 for t in adam)
    projector = state["projector"]
    assert projector and all(t.dtype == torch.float32 for t in projector.values())
    projector_adam = state["projector_optimizer"]["state"].values()
    assert projector_adam and all(s["exp_avg"].dtype == torch.float32 for s in projector_adam)


def test_bit_dropout_keeps_one_minus_p_scales_and_replays_from_the_seed() -> None:
    dropout = BitDropout(0.1)
    x = torch.ones(1000, 1000, dtype=torch.bfloat16)
    torch.manual_seed(0)
    first = dropout(x)
    kept = first != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.002  # 1e6 draws: 0.9 within 7 sigma
    assert torch.all(first[kept] == torch.tensor(1 / 0.9, dtype=torch.bfloat16))
    torch.manual_seed(0)
    assert torch.equal(dropout(x), first)
    assert not torch.equal(dropout(x), first)  # the stream moved on
    dropout.eval()
    assert dropout(x) is x
    # every 16-bit lane of the 64-bit draws is used: the kept fraction holds in each quarter
    lanes = kept.flatten()[: 4 * (kept.numel() // 4)].view(-1, 4).float().mean(0)
    assert torch.all((lanes - 0.9).abs() < 0.004)


def test_bit_dropout_replaces_every_lora_dropout(backbone_cache: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from stages.llm.backbone import load_backbone

    model = get_peft_model(
        load_backbone("tiny-random").model,
        LoraConfig(r=4, lora_dropout=0.1, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    layers = [m for m in model.modules() if hasattr(m, "lora_dropout")]
    assert use_bit_dropout(model) == len(layers) > 0
    assert all(isinstance(m.lora_dropout["default"], BitDropout) for m in layers)
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.modules() if m is not model)
