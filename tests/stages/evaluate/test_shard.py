"""``stages.evaluate.shard.rank_positions``: each rank re-forms exactly one process's batches."""

from __future__ import annotations

import random

import pytest

from stages.evaluate.rows import EvalRow, batches_by_length
from stages.evaluate.shard import rank_positions


def _rows(n: int, seed: int = 0) -> list[EvalRow]:
    rng = random.Random(seed)
    return [
        EvalRow(i, i, "p", 1, (1, 2), ("a", "b"), prompt_ids=tuple(range(rng.randint(1, 6))))
        for i in range(n)
    ]


@pytest.mark.parametrize(("n", "batch", "world"), [(17, 4, 2), (8, 4, 3), (5, 2, 2), (3, 4, 2), (12, 1, 4)])
def test_ranks_take_whole_batches_of_one_process(n: int, batch: int, world: int) -> None:
    rows = _rows(n)
    one = [sorted(b) for b in batches_by_length(None, rows, batch)]
    seen: list[int] = []
    for rank in range(world):
        mine = rank_positions(None, rows, batch, rank, world)
        seen += mine
        again = batches_by_length(None, [rows[i] for i in mine], batch)  # what the rank's evaluator forms
        assert [sorted(mine[j] for j in b) for b in again] == one[rank::world]
    assert sorted(seen) == list(range(n))
