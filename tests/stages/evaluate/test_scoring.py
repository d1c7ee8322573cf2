from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from stages.llm.data import pad_batch
from stages.llm.rows import identity_embed_fn
from stages.llm.scoring import ScoringConfig, candidate_answer_ids, evaluate_scoring, score_candidates
from stages.llm.templates import encode


def brute_force(model, tokenizer, row, config: ScoringConfig, embed_fn) -> np.ndarray:
    """One full forward pass of the jointly tokenized prompt + answer per candidate, no padding, no cache."""
    out = []
    for title in row.candidate_titles:
        (enc,) = encode(tokenizer, [row.prompt], [title])
        prompt, answer = enc.input_ids[: enc.prompt_length], enc.input_ids[enc.prompt_length :]
        ids = torch.tensor([enc.input_ids])
        logits = model(inputs_embeds=embed_fn(ids, [row])).logits[0]  # (T, V)
        logp = torch.log_softmax(logits.double(), -1)
        positions = range(len(prompt) - 1, len(prompt) + len(answer) - 1)
        out.append(sum(float(logp[p, t]) for p, t in zip(positions, answer, strict=True)))
    return np.array(out)


CONFIGS = {
    "cache_copy": ScoringConfig(method="cache_copy", prompt_batch_size=3, continuation_batch_size=7),
    "masked_rows": ScoringConfig(max_tokens_per_forward=1000),  # 2 rows per forward, ragged widths
    "masked_split": ScoringConfig(max_tokens_per_forward=350),  # a row's answers over several forwards
}


def eager(model):
    """A copy of ``model`` on the eager attention path (the mask is added to the scores there)."""
    other = copy_model(model)
    other.set_attn_implementation("eager")
    return other


def placeholder_embed_fn(model, tokenizer):
    """A hybrid-style embed_fn: perturbs the embeddings at the [CansEmb] placeholders."""
    table = model.get_input_embeddings()
    special = tokenizer.convert_tokens_to_ids("[CansEmb]")

    def embed(ids, rows):
        x = table(ids)
        return x + (ids == special).unsqueeze(-1).float() * 0.5

    return embed


@pytest.fixture(scope="module")
def expected(model, tokenizer, rows_factory) -> dict[str, np.ndarray]:
    """Brute-force scores, computed once: 5 text rows and 3 rows through the placeholder embed_fn."""
    with torch.no_grad():
        text = [brute_force(model, tokenizer, r, None, identity_embed_fn(model)) for r in rows_factory(5)]
        embed = placeholder_embed_fn(model, tokenizer)
        hybrid = [brute_force(model, tokenizer, r, None, embed) for r in rows_factory(3)]
    return {"text": np.stack(text), "hybrid": np.stack(hybrid)}


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_scores_equal_brute_force(name, attention, model, tokenizer, rows_factory, expected) -> None:
    model = eager(model) if attention == "eager" else model
    rows = rows_factory(5)
    sums, means = score_candidates(model, tokenizer, rows, identity_embed_fn(model), CONFIGS[name])
    assert sums.shape == (5, 20) and np.isfinite(sums).all() and (sums < 0).all()
    np.testing.assert_allclose(sums, expected["text"], rtol=1e-4, atol=1e-4)
    lengths = np.array([[len(a) for a in candidate_answer_ids(tokenizer, r)] for r in rows])
    np.testing.assert_allclose(means, sums / lengths)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_custom_embed_fn_is_used_for_the_prompt(name, model, tokenizer, rows_factory, expected) -> None:
    """A hybrid-style embed_fn (perturbs placeholder positions) changes scores exactly as brute force."""
    rows = rows_factory(3)
    embed = placeholder_embed_fn(model, tokenizer)
    sums, _ = score_candidates(model, tokenizer, rows, embed, CONFIGS[name])
    assert not np.allclose(sums, expected["text"][:3])
    np.testing.assert_allclose(sums, expected["hybrid"], rtol=1e-4, atol=1e-4)


def test_masked_scorer_equals_the_cache_copy_scorer(model, tokenizer, rows_factory) -> None:
    rows = rows_factory(6)
    old, old_means = score_candidates(model, tokenizer, rows, None, CONFIGS["cache_copy"])
    new, new_means = score_candidates(model, tokenizer, rows, None, ScoringConfig())
    np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new_means, old_means, rtol=1e-5, atol=1e-5)


def test_masked_groups_stay_within_the_token_bound(tokenizer, rows_factory) -> None:
    from stages.llm.rows import prompt_token_ids
    from stages.llm.scoring import masked_groups

    rows = rows_factory(7)
    prompts = [len(p) for p in prompt_token_ids(tokenizer, rows, True)]
    answers = [candidate_answer_ids(tokenizer, r) for r in rows]
    for budget in (200, 350, 1000, 100_000):
        groups = masked_groups(prompts, answers, budget)
        scored = sorted((r, c) for g in groups for r, cands in g for c in cands)
        assert scored == [(r, c) for r in range(7) for c in range(20)]  # each candidate exactly once
        for group in groups:
            width = max(prompts[r] for r, _ in group) + max(
                sum(len(answers[r][c]) - 1 for c in cands) for r, cands in group
            )
            alone = len(group) == 1 and len(group[0][1]) == 1  # one prompt + one answer always runs
            assert alone or len(group) * width <= budget
    assert len(masked_groups(prompts, answers, 100_000)) == 1


def test_unknown_method_is_refused(model, tokenizer, rows_factory) -> None:
    with pytest.raises(ValueError, match="unknown scoring method"):
        score_candidates(model, tokenizer, rows_factory(1), None, ScoringConfig(method="other"))


def test_batch_size_does_not_change_scores(model, tokenizer, rows_factory) -> None:
    rows = rows_factory(4)
    a, _ = score_candidates(model, tokenizer, rows, None, ScoringConfig(prompt_batch_size=1))
    b, _ = score_candidates(
        model, tokenizer, rows, None, ScoringConfig(prompt_batch_size=4, continuation_batch_size=80)
    )
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    c, _ = score_candidates(model, tokenizer, rows, None, ScoringConfig(max_tokens_per_forward=300))
    np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4)


def test_evaluate_scoring_metrics(model, tokenizer, rows_factory) -> None:
    rows = rows_factory(6)
    result = evaluate_scoring(model, tokenizer, rows, config=ScoringConfig(prompt_batch_size=3))
    assert result.metrics["valid_ratio"].mean == 1.0
    assert set(result.metrics) == {"valid_ratio", "hr@1", "hr@5", "ndcg@5"}
    hits = np.array(
        [rows[i].candidate_ids[int(np.argmax(result.scores[i]))] == rows[i].target_id for i in range(6)]
    )
    assert result.metrics["hr@1"].mean == hits.mean()
    assert result.predicted.tolist() == [
        r.candidate_ids[int(np.argmax(s))] for r, s in zip(rows, result.scores, strict=True)
    ]
    assert ((result.rank >= 0) & (result.rank < 20)).all()


def _training_answer(tokenizer, prompt: str, title: str) -> list[int]:
    """The tokens the trainer puts under the loss for (prompt, title): its encoder + its label mask."""
    (enc,) = encode(tokenizer, [prompt], [title])
    batch = pad_batch([enc.input_ids], [enc.prompt_length], [[]], [[]], pad_id=0, hybrid=False)
    labels = batch.labels[0]
    return labels[labels != -100].tolist()


@pytest.mark.parametrize("kind", ["bpe", "sentencepiece"])
def test_scored_answer_ids_are_the_trainers_labels(kind, tokenizer, sp_tokenizer, rows_factory) -> None:
    """Each candidate's scored ids equal what training labels after that prompt, for both tokenizers.

    With the SentencePiece tokenizer the title tokenized alone differs (the check that follows
    makes sure the case the joint tokenization exists for really occurs here).
    """
    tok = tokenizer if kind == "bpe" else sp_tokenizer
    differs = 0
    for row in rows_factory(3):
        answers = candidate_answer_ids(tok, row)
        for title, answer in zip(row.candidate_titles, answers, strict=True):
            assert answer == _training_answer(tok, row.prompt, title)
            alone = tok(" " + title + "\n", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            differs += alone != answer
    assert (differs > 0) == (kind == "sentencepiece")


@pytest.mark.parametrize("method", ["masked", "cache_copy"])
def test_sentencepiece_scores_equal_brute_force(method, sp_model, sp_tokenizer, rows_factory) -> None:
    """Both scorers score the joint sequences under a SentencePiece tokenizer too."""
    rows = rows_factory(3)
    config = ScoringConfig(method, 700, prompt_batch_size=2, continuation_batch_size=9)
    embed = identity_embed_fn(sp_model)
    sums, _ = score_candidates(sp_model, sp_tokenizer, rows, embed, config)
    with torch.no_grad():
        expected = np.stack([brute_force(sp_model, sp_tokenizer, r, config, embed) for r in rows])
    np.testing.assert_allclose(sums, expected, rtol=1e-4, atol=1e-4)


def test_stored_prompt_ids_and_peft_wrapper(model, tokenizer, rows_factory) -> None:
    """Rows carrying prompt_ids score like rows carrying text; a PEFT-wrapped model works the same."""
    import dataclasses

    rows = rows_factory(3)
    with_ids = [dataclasses.replace(r, prompt_ids=tuple(tokenizer(r.prompt)["input_ids"])) for r in rows]
    a, _ = score_candidates(model, tokenizer, rows)
    b, _ = score_candidates(model, tokenizer, with_ids)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    peft = with_trained_lora(model, ["q_proj", "v_proj"])
    c, _ = score_candidates(peft, tokenizer, with_ids)
    # The adapter is applied: the scores are those of the weights with the adapter merged in, and
    # not the backbone's (a fresh LoRA, B = 0, would change nothing and prove nothing).
    merged = copy_model(peft).merge_and_unload()
    d, _ = score_candidates(merged, tokenizer, with_ids)
    np.testing.assert_allclose(c, d, rtol=1e-4, atol=1e-4)
    assert np.abs(c - a).max() > 0.1


def with_trained_lora(model, targets: list[str]):
    """A copy of ``model`` under LoRA adapters whose B starts random (``init_lora_weights=False``),
    as a trained adapter's is."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(3)
    config = LoraConfig(r=2, lora_alpha=16, target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(copy_model(model), replace(config, init_lora_weights=False))


def copy_model(model):
    import copy

    return copy.deepcopy(model)


def test_progress_keeps_the_batches_and_counts_rows() -> None:
    from stages.llm.rows import with_progress
    from stages.progress import reporting_to

    class Seen:
        def progress(self, stage: str, done: float, total: float, description: str) -> None:
            seen.append((stage, done, total))

        def table(self, stage: str, name: str, rows: list) -> None:
            raise AssertionError("no table")

    batches = [[3, 1], [0], [2, 4, 5]]
    seen: list[tuple] = []
    with reporting_to(Seen()):
        assert list(with_progress(batches, "scoring")) == batches
    assert seen == [("evaluate", 2, 6), ("evaluate", 3, 6), ("evaluate", 6, 6)]
