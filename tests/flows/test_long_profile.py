"""The ``long`` profile: the paper's recipe for a step budget T, through ``llara finetune --max-steps``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.cli.allocator import find_tcmalloc
from flows.profiles import PAPER_PRETRAIN, pipeline_profile
from stages.llm.budget import PilotTiming, read_pilot
from stages.llm.budget import main as budget_main
from stages.llm.config import lr_multiplier
from stages.llm.profiles import LONG_STEPS, LONG_VALIDATIONS, PAPER_LR
from tests.flows.test_cli_finetune import llara, store_with_inputs  # noqa: F401 - the fixture


def test_long_profile_is_the_paper_recipe_over_a_step_budget() -> None:
    plan = pipeline_profile("long", "artist", max_steps=1500)
    ft = plan.finetune
    assert (ft.lr, ft.weight_decay, ft.epochs) == (PAPER_LR["artist"], 1e-5, 5)
    assert (ft.lora.r, ft.lora.alpha, ft.lora.dropout) == (8, 32, 0.1)
    assert (ft.schedule, ft.max_steps, ft.micro_batch * ft.grad_accum) == ("curriculum", 1500, 16)
    assert ft.val_rows is None and ft.eval_every == 1500 // LONG_VALIDATIONS and ft.checkpoint_every > 0
    assert pipeline_profile("long", "movie").finetune.eval_every == LONG_STEPS // LONG_VALIDATIONS
    # stage 1 is the SASRec chosen on validation for the domain; zero-shot is also scored on val
    shared, own = PAPER_PRETRAIN["artist"]
    sasrec = plan.pretrain_for("sasrec", 0)
    assert sasrec.epochs == shared.epochs and all(getattr(sasrec, k) == v for k, v in own["sasrec"].items())
    assert plan.zero_shot_val and pipeline_profile("quick", "artist").zero_shot_val


def test_budget_suggests_the_steps_that_fit_with_the_validations() -> None:
    pilot = PilotTiming(step_seconds=2.0, validation_seconds=30.0, steps=10)
    # 2 h = 7200 s, 21 validations of 30 s leave 6570 s: 3285 steps of 2 s
    assert pilot.steps_for(7200) == 3285 and pilot.steps_for(60) == 0


def test_budget_counts_set_up_and_checkpoints_both_ways() -> None:
    pilot = PilotTiming(step_seconds=2.0, validation_seconds=30.0, steps=20, setup_seconds=40.0,
                        checkpoint_seconds=5.0)
    # 200 steps: 40 + 400 + 21 x 30 + 8 checkpoints x 5 = 1110 s
    assert pilot.seconds_for(200) == pytest.approx(1110.0)
    assert pilot.steps_for(1110.0) == 200 and pilot.seconds_for(pilot.steps_for(7200)) <= 7200


def test_llara_finetune_long_ends_curriculum_and_schedule_at_max_steps(
    store_with_inputs: tuple[Path, str, str],  # noqa: F811
    backbone_cache: Path,
) -> None:
    store, prompts, embeddings = store_with_inputs
    args = ("finetune", "--prompts", prompts, "--embeddings", embeddings, "--profile", "long",
            "--max-steps", "6")
    result = llara(*args, store=store, cache=backbone_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    out = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "manifest.json").read_text())["config"]["config"]
    assert (config["max_steps"], config["eval_every"], config["val_rows"]) == (6, 1, None)
    assert summary["total_steps"] == summary["steps"] == 6 and summary["resumed_at"] == []
    log = pq.read_table(out / "train_log.parquet").to_pydict()
    # the schedule ends with the run: warmup from lr/100, cosine down to lr/100 at step T
    lr = config["lr"]
    assert log["lr"] == pytest.approx([lr * lr_multiplier(s, 6) for s in range(6)])
    assert log["hybrid"][0] == 0.0  # curriculum p = step / T starts text-only
    # each step's own clocks: a step trains on the CPU; its page faults are counted, and the first
    # step touches fresh memory (a later one may fault on none: it can reuse what the allocator
    # kept, as glibc's malloc did here on 2026-12-07)
    assert all(c > 0 for c in log["cpu_seconds"])
    assert all(f >= 0 for f in log["page_faults"]) and log["page_faults"][0] > 0
    history = summary["selection"]["history"]
    assert [h["step"] for h in history] == [1, 2, 3, 4, 5, 6] and all(h["seconds"] > 0 for h in history)
    timing = read_pilot(out)
    assert timing.steps == 6 and timing.step_seconds > 0 and timing.validation_seconds > 0
    assert timing.setup_seconds > 0 and summary["wall_seconds"] > summary["train_seconds"]
    # the same command again: the same artifact, from the cache
    again = llara(*args, store=store, cache=backbone_cache)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == str(out)


def test_llara_finetune_takes_the_profiles_schedule_unless_given_and_runs_under_tcmalloc(
    store_with_inputs: tuple[Path, str, str],  # noqa: F811
    backbone_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the cpu profile's recipe is `direct` (every step hybrid); --schedule used to default to
    # curriculum, which silently replaced it
    store, prompts, embeddings = store_with_inputs
    args = ("finetune", "--prompts", prompts, "--embeddings", embeddings, "--profile", "cpu",
            "--max-steps", "3", "--set", "val_rows=4", "--set", "fit_rows=0")
    # and the command runs under tcmalloc where the machine has it, unless told otherwise
    tcmalloc = "tcmalloc" if sys.platform.startswith("linux") and find_tcmalloc() else "system"
    for extra, schedule, malloc in [((), "direct", tcmalloc), (("--schedule", "text"), "text", "system")]:
        env = {"LLARA_MALLOC": "system"} if malloc == "system" else {}
        result = llara(*args, *extra, store=store, cache=backbone_cache, **env)
        assert result.returncode == 0, result.stderr[-3000:]
        out = Path(result.stdout.strip().splitlines()[-1])
        assert json.loads((out / "summary.json").read_text())["malloc"] == malloc
        assert json.loads((out / "manifest.json").read_text())["config"]["config"]["schedule"] == schedule
        hybrid = pq.read_table(out / "train_log.parquet").column("hybrid").to_pylist()
        assert hybrid == ([1.0] * 3 if schedule == "direct" else [0.0] * 3)
    # a pilot timed under the system's malloc plans a run that slows down: the planner says so
    budget_main([str(out), "--steps", "10"])
    printed = capsys.readouterr().out
    assert "malloc system" in printed and "warning: the pilot ran under the system's malloc" in printed
