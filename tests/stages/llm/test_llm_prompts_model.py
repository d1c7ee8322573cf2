"""Prompts, label mask, placeholder replacement, projector gradients, save/load round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file

from stages.llm.backbone import load_backbone
from stages.llm.config import LoraSettings
from stages.llm.data import PromptData
from stages.llm.model import PromptLM, build_llara_model, load_trained, save_trained
from stages.llm.templates import IGNORE_INDEX


def _model(inputs: dict[str, Path], dropout: float = 0.0):
    backbone = load_backbone("tiny-random")
    items = load_file(str(inputs["embeddings"] / "item_embeddings.safetensors"))["item_embeddings"]
    model = build_llara_model(backbone, items, LoraSettings(dropout=dropout), seed=0)
    data = PromptData(inputs["prompts"], backbone.tokenizer, seed=0)
    return backbone, model, data, items


def test_eval_prompts_are_materialized_with_positions(llm_inputs: dict[str, Path]) -> None:
    table = pq.read_table(llm_inputs["prompts"] / "prompts.parquet").to_pylist()
    assert len(table) == 2 * 3 * (3 + 3)  # modes x templates x (val + test rows)
    backbone = load_backbone("tiny-random")
    tokens = backbone.tokens
    for row in table:
        assert "20 movie" in row["prompt"] and row["candidates"][row["target_index"]] == row["target"]
        ids = row["input_ids"]
        hist_tok, cans_tok = (
            (tokens.history, tokens.cans) if row["mode"] == "hybrid" else (tokens.ph, tokens.ph)
        )
        assert len(row["history_positions"]) == len(row["history"])
        assert len(row["candidate_positions"]) == 20
        assert all(ids[p] == hist_tok for p in row["history_positions"])
        assert all(ids[p] == cans_tok for p in row["candidate_positions"])
        assert max(row["candidate_positions"]) < row["prompt_length"]


def test_label_mask_covers_exactly_the_answer(llm_inputs: dict[str, Path]) -> None:
    backbone, _, data, _ = _model(llm_inputs)
    tok = backbone.tokenizer
    candidates = data.epoch_candidates(0)
    rows = np.arange(5)
    for hybrid in (False, True):
        batch = data.train_batch(rows, candidates, template=1, hybrid=hybrid)
        for b, r in enumerate(rows):
            labels = batch.labels[b]
            kept = labels[labels != IGNORE_INDEX].tolist()
            title = data.titles[int(data.train_target[r])]
            assert tok.decode(kept) == " " + title + "\n" + tok.eos_token
            first = int((labels != IGNORE_INDEX).nonzero()[0])
            n_real = int(batch.attention_mask[b].sum())
            assert (labels[first:n_real] != IGNORE_INDEX).all() and (labels[n_real:] == IGNORE_INDEX).all()
            prompt = tok.decode(batch.input_ids[b, :first].tolist())
            assert prompt.endswith("Recommendation:")


def test_kth_placeholder_gets_projected_kth_item(llm_inputs: dict[str, Path]) -> None:
    _, model, data, items = _model(llm_inputs)
    candidates = data.epoch_candidates(0)
    batch = data.train_batch(np.array([3, 7]), candidates, template=0, hybrid=True)
    with torch.no_grad():
        emb = model.inputs_embeds(batch.input_ids, batch.history_items, batch.candidate_items, hybrid=True)
        for token, flat in (
            (model.tokens.history, batch.history_items),
            (model.tokens.cans, batch.candidate_items),
        ):
            positions = (batch.input_ids == token).nonzero().tolist()  # row-major
            assert len(positions) == len(flat)
            for k, (b, t) in enumerate(positions):
                expected = model.projector(items[flat[k]][None])[0]
                torch.testing.assert_close(emb[b, t], expected)
    assert batch.history_items[: len(data.train_history[3])].tolist() == data.train_history[3].tolist()
    assert batch.candidate_items[:20].tolist() == candidates[3]


def test_projector_gets_no_gradient_on_text_batches(llm_inputs: dict[str, Path]) -> None:
    _, model, data, _ = _model(llm_inputs)
    candidates = data.epoch_candidates(0)
    for hybrid in (False, True):
        model.zero_grad(set_to_none=True)
        b = data.train_batch(np.arange(3), candidates, template=2, hybrid=hybrid)
        model(
            b.input_ids, b.attention_mask, b.labels, b.history_items, b.candidate_items, b.hybrid
        ).backward()
        projector_grads = [p.grad for p in model.projector.parameters()]
        lora_grads = [p.grad for n, p in model.named_parameters() if "lora_A" in n]
        assert all(g is not None for g in lora_grads)
        if hybrid:
            assert all(g is not None and g.abs().sum() > 0 for g in projector_grads)
        else:
            assert all(g is None for g in projector_grads)


def test_engine_module_state_dict_holds_only_lora(llm_inputs: dict[str, Path]) -> None:
    """What DeepSpeed checkpoints: the LoRA tensors only (no frozen base, no tied lm_head, no projector)."""
    _, model, _, _ = _model(llm_inputs)
    lm = PromptLM(model.llm, model.tokens)
    trainable = {n for n, p in lm.named_parameters() if p.requires_grad}
    assert set(lm.state_dict()) == trainable
    assert trainable and all("lora_" in n for n in trainable)


def test_save_and_load_give_identical_logits(llm_inputs: dict[str, Path], tmp_path: Path) -> None:
    backbone, model, data, items = _model(llm_inputs)
    with torch.no_grad():
        for _name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    model.eval()
    b = data.eval_batches("val", hybrid=True, micro_batch=3)[0]
    with torch.no_grad():
        before = model.logits(b.input_ids, b.attention_mask, b.history_items, b.candidate_items, True)
    save_trained(model, tmp_path / "trained")
    reloaded = load_trained(load_backbone("tiny-random"), items, tmp_path / "trained")
    with torch.no_grad():
        after = reloaded.logits(b.input_ids, b.attention_mask, b.history_items, b.candidate_items, True)
    torch.testing.assert_close(before, after, rtol=0, atol=1e-6)


def test_train_candidates_are_redrawn_per_epoch_and_reproducible(llm_inputs: dict[str, Path]) -> None:
    _, _, data, _ = _model(llm_inputs)
    first = data.epoch_candidates(0)
    assert first == data.epoch_candidates(0)
    assert first != data.epoch_candidates(1)
    for cands, history, target in zip(first, data.train_history, data.train_target, strict=True):
        assert len(set(cands)) == data.n_candidates and int(target) in cands
        assert not set(cands) & set(history.tolist())


def test_length_grouping_reduces_padding(llm_inputs: dict[str, Path]) -> None:
    _, _, data, _ = _model(llm_inputs)
    candidates = data.epoch_candidates(0)

    def padding(group: bool) -> float:
        pads = total = 0
        for rows in data.micro_batches(0, 4, 1, candidates, group=group):
            b = data.train_batch(rows, candidates, 0, True)
            pads += int((b.attention_mask == 0).sum())
            total += b.attention_mask.numel()
        return pads / total

    assert padding(True) < padding(False)


def test_answer_position_loss_equals_full_logits_loss_and_gradients(llm_inputs: dict[str, Path]) -> None:
    """Logits at the answer positions only, under the causal mask alone (``Batch.loss``, what the
    recipe runs): the same loss and LoRA gradients as HF's ``labels=`` path with the padding mask."""
    backbone, model, data, _ = _model(llm_inputs)
    candidates = data.epoch_candidates(0)
    lm = PromptLM(model.llm, model.tokens).train()
    rows = np.array([0, 3, 5, 9])  # different lengths, so padding and short answers both occur
    for hybrid in (False, True):
        b = data.train_batch(rows, candidates, template=2, hybrid=hybrid)
        assert (b.targets == IGNORE_INDEX).any(), "some row must have a shorter answer than K"
        assert (b.attention_mask == 0).any(), "some row must be padded"

        def grads_of(loss: torch.Tensor) -> list[torch.Tensor]:
            params = [p for p in lm.parameters() if p.requires_grad]
            return list(torch.autograd.grad(loss, params, retain_graph=False))

        ours = b.loss(lm, model.projector, model.item_embeddings)
        ours_grads = grads_of(ours)
        emb = model.llm.get_input_embeddings()(b.input_ids)
        emb = model.inputs_embeds(b.input_ids, b.history_items, b.candidate_items, hybrid) if hybrid else emb
        full = model.llm(
            inputs_embeds=emb, attention_mask=b.attention_mask, labels=b.labels, use_cache=False
        ).loss
        full_grads = grads_of(full)
        torch.testing.assert_close(ours, full, rtol=0, atol=1e-5)
        assert len(ours_grads) > 0
        for g_ours, g_full in zip(ours_grads, full_grads, strict=True):
            torch.testing.assert_close(g_ours, g_full, rtol=1e-4, atol=1e-6)
