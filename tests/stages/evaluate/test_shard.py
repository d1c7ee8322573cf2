"""``stages.evaluate.shard.work_units``: a rank evaluates whole forwards of the one-process run."""

from __future__ import annotations

import random

import pytest

from stages.evaluate.evaluate import EvaluateConfig, scoring_config
from stages.evaluate.shard import work_units
from stages.llm.rows import EvalRow, batches_by_length
from stages.llm.scoring import candidate_answer_ids, masked_groups, prompt_token_ids
from tests.stages.evaluate.conftest import make_rows


def _rows(n: int, seed: int = 0) -> list[EvalRow]:
    rng = random.Random(seed)
    return [
        EvalRow(i, i, "p", 1, (1, 2), ("a", "b"), prompt_ids=tuple(range(rng.randint(1, 6))))
        for i in range(n)
    ]


@pytest.mark.parametrize(("n", "batch"), [(17, 4), (8, 4), (5, 2), (3, 4), (12, 1)])
def test_generation_units_are_the_one_process_batches(n: int, batch: int) -> None:
    rows = _rows(n)
    config = EvaluateConfig(mode="generation", batch_size=batch)
    units = work_units(None, rows, config)
    assert units == batches_by_length(None, rows, batch)
    for unit in units:  # evaluated alone, a unit is one batch again
        assert len(batches_by_length(None, [rows[i] for i in unit], batch)) == 1


@pytest.mark.parametrize("budget", [400, 1500, 8192])
def test_masked_scoring_units_are_the_one_process_forwards(tokenizer, budget: int) -> None:
    rows = make_rows(9)
    config = EvaluateConfig(mode="scoring", max_tokens_per_forward=budget)
    units = work_units(tokenizer, rows, config)
    assert sorted(i for unit in units for i in unit) == list(range(len(rows)))
    scoring = scoring_config(config)
    prompts = prompt_token_ids(tokenizer, rows, scoring.add_special_tokens)
    answers = [candidate_answer_ids(tokenizer, r) for r in rows]
    one = masked_groups([len(p) for p in prompts], answers, budget)
    for unit in units:  # alone, a unit packs into the same forwards as in one process
        alone = masked_groups([len(prompts[i]) for i in unit], [answers[i] for i in unit], budget)
        expected = [g for g in one if g[0][0] in unit]
        assert [[(unit[r], c) for r, c in g] for g in alone] == expected
    if budget == 400:  # rows too long for one forward: their groups make one unit
        assert len(one) > len(units) > 1
