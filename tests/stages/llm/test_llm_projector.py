"""The projector under the real DeepSpeed engine: text-only steps leave it (and its Adam state) as it was.

Runs the recipe's own training loop, in process, under ZeRO 0-3 and with optimizer offload, on a
curriculum whose steps mix text-only and hybrid micro-batches, and snapshots the projector after
every optimizer step.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from stages.llm.config import LoraSettings
from stages.llm.finetune import FinetuneRecipe
from stages.llm.profiles import profile


def _snapshot(recipe: FinetuneRecipe) -> tuple[dict, dict, dict]:
    weights = {n: p.detach().clone() for n, p in recipe.model.projector.named_parameters()}
    optimizer = copy.deepcopy(recipe.projector_optimizer.state_dict()["state"])
    lora = {
        n: p.detach().float().clone() for n, p in recipe.engine.module.named_parameters() if p.requires_grad
    }
    return weights, optimizer, lora


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            if not _same(x, y):
                return False
        elif isinstance(x, torch.Tensor):
            if x.shape != y.shape or not torch.equal(x, y):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize(
    ("zero", "offload"), [(0, False), (1, False), (2, False), (3, False), (2, True), (3, True)]
)
def test_text_only_steps_leave_projector_and_its_adam_state_bit_identical(
    llm_inputs: dict[str, Path], tmp_path: Path, zero: int, offload: bool
) -> None:
    config = replace(
        profile("smoke"),
        schedule="curriculum",
        zero_stage=zero,
        offload=offload,
        max_steps=8,
        val_rows=0,
        lora=LoraSettings(dropout=0.0),
    )
    recipe = FinetuneRecipe(config, llm_inputs["prompts"], llm_inputs["embeddings"], tmp_path / "out")
    recipe.setup()
    kinds: list[bool] = []
    snapshots = [_snapshot(recipe)]
    real_step = recipe.optimizer_step

    def recording_step(batches, projector_steps):
        kinds.append(projector_steps)
        assert projector_steps == any(b.hybrid for b in batches)  # one process: its batches are all there are
        losses = real_step(batches, projector_steps)
        snapshots.append(_snapshot(recipe))
        return losses

    recipe.optimizer_step = recording_step  # type: ignore[method-assign]
    recipe.train()
    assert len(kinds) == 8
    # The curriculum must give text-only steps after hybrid ones, or the test proves nothing.
    first_hybrid = kinds.index(True)
    assert not all(kinds[first_hybrid:]), kinds
    for step, hybrid in enumerate(kinds):
        (w0, o0, l0), (w1, o1, l1) = snapshots[step], snapshots[step + 1]
        if hybrid:
            assert not _same(w0, w1) and not _same(o0, o1), f"step {step}: hybrid but the projector stayed"
        else:
            assert _same(w0, w1) and _same(o0, o1), f"step {step}: text-only but the projector moved"
        assert not _same(l0, l1), f"step {step}: LoRA did not train"
    summary = recipe.save()
    assert summary["selection"] is None and summary["steps"] == 8
