"""The lever-study options of the finetune config: through the stage as users run it (DeepSpeed),
loaded back by the evaluator's path, and part of the artifact's identity."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from artifacts.identity import artifact_id
from stages.llm.backbone import load_backbone
from stages.llm.config import FinetuneConfig, LoraSettings
from stages.llm.data import PromptData
from stages.llm.model import build_llara_model, load_trained
from stages.llm.projector import Projector, token_rms
from stages.llm.rows import EvalRow
from stages.llm.validation import _same_answers_out
from stages.metrics import PROBES, candidate_probes
from tasks.common import identity_of
from tests.stages.llm._run import _run


def test_levers_train_under_deepspeed_record_the_probes_and_load_for_evaluation(
    llm_inputs: dict[str, Path], backbone_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    sets = ("max_steps=4", "projector_norm=token", "projector_lr=0.01", "user_token=last-item", "lora.r=4")
    _run(llm_inputs, backbone_cache, out, *sets, "fit_rows=6")
    history = json.loads((out / "summary.json").read_text())["selection"]["history"]
    assert history and all(set(PROBES) <= set(point) for point in history)
    assert all(0.0 <= p["fit_hr1"] <= 1.0 and p["val_nll"] > 0 for p in history)
    saved = load_file(str(out / "projector.safetensors"))
    assert {"norm.weight", "user.0.weight", "user.3.weight"} <= set(saved)
    items = load_file(str(llm_inputs["embeddings"] / "item_embeddings.safetensors"))["item_embeddings"]
    backbone = load_backbone("tiny-random")
    model = load_trained(backbone, items, out)
    assert model.projector.user is not None and model.projector.norm is not None
    assert all(p.shape[0] == 4 for n, p in model.named_parameters() if "lora_A" in n)
    # the user vector lands on the answer cue (the last column of a left-padded prompt) only
    ids = torch.tensor([[5, 6, 7, 8]])
    none = torch.zeros(0, dtype=torch.long)
    with torch.no_grad():
        plain = model.inputs_embeds(ids, none, none, True)
        user = model.inputs_embeds(ids, none, none, True, torch.tensor([3]))
    assert torch.equal(plain[:, :-1], user[:, :-1]) and not torch.equal(plain[:, -1], user[:, -1])


def test_token_norm_projector_starts_at_the_scale_of_a_word(backbone_cache: Path) -> None:
    backbone = load_backbone("tiny-random")
    items = torch.randn(40, 64, generator=torch.Generator().manual_seed(0))
    model = build_llara_model(backbone, items, projector_norm="token")
    rms = token_rms(backbone.model.get_input_embeddings().weight)
    with torch.no_grad():
        out = model.projector(items)  # (40, d)
    assert out.pow(2).mean().sqrt().item() == pytest.approx(rms, rel=0.05)
    plain = Projector.for_state(build_llara_model(load_backbone("tiny-random"), items).projector.state_dict())
    assert plain.norm is None and plain.user is None


def test_candidate_probes_are_hit_reciprocal_rank_and_candidate_nll() -> None:
    scores = np.array([[0.0, 0.0, 0.0, 0.0], [5.0, 1.0, 0.0, -1.0], [0.0, 2.0, 1.0, 3.0]])
    hit, reciprocal, nll = candidate_probes(scores, np.array([1, 0, 2]))
    assert hit.tolist() == [0.0, 1.0, 0.0]  # a tie counts against the target, as in the evaluate stage
    assert reciprocal.tolist() == pytest.approx([1 / 4, 1.0, 1 / 3])
    assert nll[0] == pytest.approx(math.log(4))  # uniform scores: ln(candidates)
    assert nll[1] < 0.1 and nll[2] > nll[0]


def test_fit_rows_are_fixed_training_rows_and_same_titled_negatives_leave_the_ranking(
    llm_inputs: dict[str, Path], backbone_cache: Path
) -> None:
    tokenizer = load_backbone("tiny-random").tokenizer
    data = PromptData(llm_inputs["prompts"], tokenizer, seed=0)
    rows = data.fit_rows(5, hybrid=True)
    again = PromptData(llm_inputs["prompts"], tokenizer, seed=0).fit_rows(5, hybrid=True)
    assert rows == again and len({r.row_id for r in rows}) == 5
    candidates = data.epoch_candidates(0)
    for row in rows:
        position = int(np.flatnonzero(data.train_row == row.row_id)[0])
        assert list(row.candidate_ids) == candidates[position] and row.target_id in row.candidate_ids
        assert list(row.history_ids) == data.train_history[position].tolist()
        assert (
            row.prompt_ids and row.target_answer_ids and row.prompt.count("[CansEmb]") == len(candidates[0])
        )
    twin = replace(rows[0], candidate_titles=(rows[0].candidate_titles[rows[0].target_index],) * 20)
    kept = _same_answers_out(np.zeros((1, 20)), [twin])
    assert np.isinf(kept).sum() == 19 and kept[0, twin.target_index] == 0.0
    assert isinstance(twin, EvalRow)


@pytest.mark.parametrize(
    "change",
    [
        {"projector_lr": 1e-2},
        {"projector_norm": "token"},
        {"user_token": "last-item"},
        {"fit_rows": 32},
        {"lora": LoraSettings(r=16)},
    ],
)
def test_every_lever_is_part_of_the_artifact_id(change: dict) -> None:
    base = FinetuneConfig(precision="fp32")
    ids = {artifact_id("finetune", identity_of(c), {}, "code") for c in (base, replace(base, **change))}
    assert len(ids) == 2
