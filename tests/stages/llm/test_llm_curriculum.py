"""Each curriculum schedule behaves as named; ``curriculum`` follows p = step / T statistically."""

from __future__ import annotations

import numpy as np
import pytest

from stages.llm.curriculum import Curriculum
from stages.llm.finetune import lr_multiplier


def test_curriculum_fraction_follows_step_over_t() -> None:
    total = 4000
    c = Curriculum("curriculum", total, epochs=1, micro_batches_per_epoch=total)
    flags = np.array([c.is_hybrid(s, 0, s) for s in range(total)], dtype=float)
    for lo in range(0, total, 1000):
        expected = (lo + 500) / total
        assert abs(flags[lo : lo + 1000].mean() - expected) < 0.05
    assert c.eval_hybrid
    # the draw is per optimizer step: every micro-batch of a step agrees
    assert len({c.is_hybrid(1234, 0, m) for m in range(16)}) == 1


def test_direct_text_and_two_stage() -> None:
    direct = Curriculum("direct", 100, 4, 100)
    text = Curriculum("text", 100, 4, 100)
    two = Curriculum("two-stage", 100, 4, 100)
    assert all(direct.is_hybrid(s, s // 25, s % 25) for s in range(100))
    assert not any(text.is_hybrid(s, s // 25, s % 25) for s in range(100))
    assert not text.eval_hybrid and direct.eval_hybrid and two.eval_hybrid
    assert [two.is_hybrid(e * 25, e, 0) for e in range(4)] == [False, False, True, True]


def test_llara_official_resets_every_epoch_and_is_mostly_text() -> None:
    epochs, micro = 5, 800
    c = Curriculum(
        "llara-official", total_steps=epochs * micro // 16, epochs=epochs, micro_batches_per_epoch=micro
    )
    flags = np.array([[c.is_hybrid(0, e, m) for m in range(micro)] for e in range(epochs)], dtype=float)
    assert abs(flags.mean() - 0.1) < 0.03  # p climbs to 1/epochs within every epoch
    assert flags[:, :80].mean() < 0.03 and flags[:, -160:].mean() > 0.12
    assert c.probability(0, 3, micro - 1) == pytest.approx(1 / epochs)


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError):
        Curriculum("hard-first", 10, 1, 10)


def test_lr_warmup_and_cosine() -> None:
    assert lr_multiplier(0, 100) == pytest.approx(0.01)
    assert lr_multiplier(5, 100) == pytest.approx(1.0)
    assert lr_multiplier(100, 100) == pytest.approx(0.01)
    assert lr_multiplier(52, 100) == pytest.approx(0.505, abs=0.01)
