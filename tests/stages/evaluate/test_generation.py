from __future__ import annotations

import numpy as np
import torch

from stages.evaluate.generation import (
    GenerationConfigEval,
    _NewlineStop,
    evaluate_generation,
    generate_answers,
    score_outputs,
)
from stages.evaluate.rows import generation_metrics


def greedy_reference(model, tokenizer, prompt: str, max_new: int) -> str:
    """Plain greedy loop on the unpadded prompt, full forward each step."""
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new):
            nxt = int(
                model(input_ids=torch.cat([ids, torch.tensor([new], dtype=torch.long)], 1))
                .logits[0, -1]
                .argmax()
            )
            if nxt == tokenizer.eos_token_id:
                break
            new.append(nxt)
    return tokenizer.decode(new, skip_special_tokens=True).strip().split("\n")[0]


def test_batched_left_padded_generation_matches_greedy_loop(model, tokenizer, rows_factory) -> None:
    rows = rows_factory(3)
    config = GenerationConfigEval(batch_size=3, max_new_tokens=8, stop_at_newline=False)
    got = generate_answers(model, tokenizer, rows, None, config)
    assert got == [greedy_reference(model, tokenizer, r.prompt, 8) for r in rows]


def test_newline_stop_keeps_the_first_line(model, tokenizer, rows_factory) -> None:
    rows = rows_factory(4)
    a = generate_answers(model, tokenizer, rows, None, GenerationConfigEval(batch_size=2, max_new_tokens=16))
    b = generate_answers(
        model,
        tokenizer,
        rows,
        None,
        GenerationConfigEval(batch_size=4, max_new_tokens=16, stop_at_newline=False),
    )
    assert a == b


def test_newline_stop_criterion_per_row(tokenizer) -> None:
    stop = _NewlineStop(tokenizer)
    texts = ["\n Heat", "Heat\n", "Heat"]
    ids = [tokenizer(t)["input_ids"] for t in texts]
    width = max(map(len, ids))
    batch = torch.tensor([[tokenizer.pad_token_id] * (width - len(i)) + i for i in ids])
    assert stop(batch, torch.zeros(3, 5)).tolist() == [False, True, False]  # leading newline is stripped


def test_generation_metrics_definitions() -> None:
    valid = np.array([1, 1, 1, 0, 0, 1, 0, 1, 0, 0], dtype=bool)
    correct = np.array([1, 0, 1, 0, 0, 0, 0, 1, 0, 0], dtype=bool)
    m = generation_metrics(valid, correct)
    assert m["valid_ratio"].mean == 0.5
    assert m["hr@1"].mean == 0.3  # correct / total: the published HitRatio@1
    assert m["hr@1|valid"].mean == 0.6 and m["hr@1|valid"].n == 5
    assert m["hr@1"].low <= 0.3 <= m["hr@1"].high and m["hr@1"].n == 10


def test_score_outputs_from_text(tokenizer, rows_factory) -> None:
    rows = rows_factory(3)
    outputs = [rows[0].candidate_titles[rows[0].target_index], "nothing at all", rows[2].candidate_titles[0]]
    result = score_outputs(outputs, rows)
    assert [m.valid for m in result.matches][:2] == [True, False]
    assert result.matches[0].correct and result.metrics["valid_ratio"].n == 3


def test_evaluate_generation_end_to_end(model, tokenizer, rows_factory) -> None:
    rows = rows_factory(3)
    result = evaluate_generation(model, tokenizer, rows, config=GenerationConfigEval(max_new_tokens=4))
    assert len(result.outputs) == 3 and set(result.metrics) == {"valid_ratio", "hr@1", "hr@1|valid"}
    assert 0.0 <= result.metrics["hr@1"].mean <= result.metrics["valid_ratio"].mean <= 1.0


def test_generation_through_peft_wrapper(model, tokenizer, rows_factory) -> None:
    import copy

    from peft import LoraConfig, get_peft_model

    rows = rows_factory(2)
    config = GenerationConfigEval(max_new_tokens=6)
    peft = get_peft_model(
        copy.deepcopy(model), LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], task_type="CAUSAL_LM")
    )
    assert generate_answers(peft, tokenizer, rows, None, config) == generate_answers(
        model, tokenizer, rows, None, config
    )
