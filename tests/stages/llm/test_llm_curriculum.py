"""Each curriculum schedule behaves as named; ``curriculum`` follows p = step / T statistically."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from stages.llm.curriculum import Curriculum
from stages.llm.finetune import FinetuneRecipe, lr_multiplier
from stages.llm.profiles import profile


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


@pytest.mark.parametrize(("total", "epochs", "per_epoch"), [(8, 1, 8), (100, 5, 550)])
def test_two_stage_switches_half_way_through_the_run_not_by_epoch(total, epochs, per_epoch) -> None:
    """One epoch, and a run cut by max_steps inside its first epoch (the 100-step GPU runs)."""
    two = Curriculum("two-stage", total, epochs, per_epoch)
    flags = [two.is_hybrid(s, 0, s) for s in range(total)]
    assert flags == [False] * (total // 2) + [True] * (total - total // 2)
    quarter = Curriculum("two-stage", total, epochs, per_epoch, text_fraction=0.25)
    assert [quarter.is_hybrid(s, 0, s) for s in range(total)].index(True) == total // 4


def test_a_run_that_trains_no_hybrid_step_but_evaluates_hybrid_is_refused() -> None:
    with pytest.raises(ValueError, match="trains no hybrid step in a run of 1 optimizer steps"):
        Curriculum("curriculum", 1, 1, 1)  # p = 0 / T at its only step
    with pytest.raises(ValueError, match=r"two_stage_text_fraction must be in \[0, 1\)"):
        Curriculum("two-stage", 100, 1, 100, text_fraction=1.0)
    assert not Curriculum("text", 1, 1, 1).eval_hybrid  # text-only, evaluated text-only: fine
    assert Curriculum("two-stage", 1, 1, 1).is_hybrid(0, 0, 0)  # the second half of one step is it


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


@pytest.mark.parametrize("epochs", [1, 3])
def test_two_stage_finetune_trains_its_second_half_hybrid(
    llm_inputs: dict[str, Path], tmp_path: Path, epochs: int
) -> None:
    """The smoke fine-tune, one epoch, and three epochs cut by max_steps inside the first one."""
    config = replace(profile("smoke"), schedule="two-stage", epochs=epochs, max_steps=8, val_rows=0)
    recipe = FinetuneRecipe(config, llm_inputs["prompts"], llm_inputs["embeddings"], tmp_path / "out")
    recipe.setup()
    assert recipe.total_steps == 8 and recipe.steps_per_epoch > 8  # every step in epoch 0
    recipe.train()
    assert [row["epoch"] for row in recipe.log] == [0] * 8
    assert [row["hybrid"] for row in recipe.log] == [0.0] * 4 + [1.0] * 4


def test_finetune_refuses_a_run_with_no_hybrid_step(llm_inputs: dict[str, Path], tmp_path: Path) -> None:
    config = replace(profile("smoke"), schedule="curriculum", max_steps=1, val_rows=0)
    recipe = FinetuneRecipe(config, llm_inputs["prompts"], llm_inputs["embeddings"], tmp_path / "out")
    with pytest.raises(ValueError, match="trains no hybrid step"):
        recipe.setup()
    assert not (tmp_path / "out").exists()
