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


@pytest.mark.parametrize("p", [0.0, 0.1])
def test_lora_on_a_bf16_input_skips_the_fp32_copy_and_computes_the_same(p: float) -> None:
    from peft import LoraConfig, get_peft_model

    from stages.llm.mixed_precision import store_frozen_linears_in_bf16

    def lora_model() -> torch.nn.Module:
        torch.manual_seed(0)
        base = torch.nn.Sequential()
        base.add_module("o_proj", torch.nn.Linear(64, 64))
        model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=p, target_modules=["o_proj"]))
        torch.nn.init.normal_(model.base_model.model.o_proj.lora_B["default"].weight)  # B = 0 at init
        use_bit_dropout(model)
        return model

    x = torch.randn(8, 64).to(torch.bfloat16)  # a bf16 input, as the attention output is under autocast
    results = []
    for cast in (True, False):
        model = lora_model()
        store_frozen_linears_in_bf16(model)
        layer = model.base_model.model.o_proj
        assert layer.cast_input_dtype_enabled is False
        layer.cast_input_dtype_enabled = cast  # True: peft's default, the input copied to fp32
        seen: list[torch.dtype] = []
        lora_a = layer.lora_A["default"]
        hook = lora_a.register_forward_pre_hook(lambda _, a, seen=seen: seen.append(a[0].dtype))
        torch.manual_seed(1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
        out.float().square().sum().backward()
        hook.remove()
        assert seen == [torch.float32 if cast else torch.bfloat16]
        grads = [q.grad for q in model.parameters() if q.requires_grad]
        results.append((out, grads))
    (out_cast, grads_cast), (out_plain, grads_plain) = results
    assert torch.equal(out_cast, out_plain)
    assert all(torch.equal(a, b) for a, b in zip(grads_cast, grads_plain, strict=True))
