from __future__ import annotations

import copy

import numpy as np
import torch
from transformers import StoppingCriteriaList

from stages.llm.generation import (
    GenerationConfigEval,
    _NewlineStop,
    evaluate_generation,
    generate_answers,
    score_outputs,
)
from stages.llm.matching import first_line
from stages.llm.rows import encode_left_padded, generation_metrics


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


def newline_prone(model, tokenizer):
    """The random model never writes a newline (checked below), which would make the newline tests
    vacuous; doubling the newline token's output row makes it write one after a few characters."""
    (newline,) = tokenizer("\n")["input_ids"]
    boosted = copy.deepcopy(model)
    with torch.no_grad():
        boosted.lm_head.weight[newline] *= 2
    return boosted


def raw_generation(model, tokenizer, rows, stop: bool, max_new: int = 16) -> tuple[list[str], int]:
    """Decoded new tokens (all lines) and how many steps ``generate`` ran."""
    ids, mask = encode_left_padded(tokenizer, rows, True, torch.device("cpu"))
    stops = StoppingCriteriaList([_NewlineStop(tokenizer)]) if stop else None
    with torch.no_grad():
        new = model.generate(
            inputs_embeds=model.get_input_embeddings()(ids),
            attention_mask=mask,
            max_new_tokens=max_new,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            stopping_criteria=stops,
        )
    return tokenizer.batch_decode(new, skip_special_tokens=True), new.shape[1]


def test_newline_stop_keeps_the_first_line(model, tokenizer, rows_factory) -> None:
    rows = rows_factory(4)
    plain, _ = raw_generation(model, tokenizer, rows, stop=False)
    assert not any("\n" in t.lstrip() for t in plain)  # why the test needs newline_prone
    prone = newline_prone(model, tokenizer)
    free, free_steps = raw_generation(prone, tokenizer, rows, stop=False)
    # every row writes text, a newline, then more text: cutting at the newline changes the answer
    assert all(first_line(t) and first_line(t) != t.strip() for t in free), free
    _, stopped_steps = raw_generation(prone, tokenizer, rows, stop=True)
    assert stopped_steps < free_steps  # the criterion fired
    a = generate_answers(prone, tokenizer, rows, None, GenerationConfigEval(batch_size=2, max_new_tokens=16))
    b = generate_answers(
        prone,
        tokenizer,
        rows,
        None,
        GenerationConfigEval(batch_size=4, max_new_tokens=16, stop_at_newline=False),
    )
    assert a == b == [first_line(t) for t in free]


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
    config = GenerationConfigEval(max_new_tokens=4)
    result = evaluate_generation(model, tokenizer, rows, config=config)
    assert result.outputs == generate_answers(model, tokenizer, rows, None, config)
    expected = score_outputs(result.outputs, rows)
    assert result.matches == expected.matches
    assert set(result.metrics) == {"valid_ratio", "hr@1", "hr@1|valid"}
    valid = np.array([m.valid for m in expected.matches])
    correct = np.array([m.correct for m in expected.matches])
    assert (
        result.metrics["valid_ratio"].mean == valid.mean() and result.metrics["hr@1"].mean == correct.mean()
    )


def test_generation_through_peft_wrapper(model, tokenizer, rows_factory) -> None:
    """Generation applies a PEFT adapter: the merged weights' answers, not the backbone's."""
    import copy

    from tests.stages.evaluate.test_scoring import with_trained_lora

    rows = rows_factory(4)
    config = GenerationConfigEval(max_new_tokens=6)
    peft = with_trained_lora(model, ["q_proj", "v_proj"])
    merged = copy.deepcopy(peft).merge_and_unload()
    answers = generate_answers(peft, tokenizer, rows, None, config)
    assert answers == generate_answers(merged, tokenizer, rows, None, config)
    assert answers != generate_answers(model, tokenizer, rows, None, config)
