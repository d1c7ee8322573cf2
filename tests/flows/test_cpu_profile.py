"""The ``cpu`` profile: the recipe the lever study chose (docs/learning.md), and its rows' names."""

from __future__ import annotations

from flows.profiles import pipeline_profile
from stages.llm.profiles import LONG_STEPS, long_eval_every
from stages.report.config import llara_row, method_variants


def test_cpu_profile_is_the_chosen_recipe_over_a_step_budget() -> None:
    plan = pipeline_profile("cpu", "artist", max_steps=400)
    ft = plan.finetune
    assert plan.prompts.item_order == "token-first"  # the lever that made the relational check learn
    assert (ft.schedule, ft.lr, ft.lora.dropout, ft.lora.r) == ("direct", 2e-3, 0.0, 8)
    assert (ft.max_steps, ft.micro_batch * ft.grad_accum, ft.eval_every) == (400, 16, long_eval_every(400))
    assert plan.zero_shot_val and ft.val_rows is None and ft.fit_rows > 0
    assert pipeline_profile("cpu", "movie").finetune.max_steps == LONG_STEPS
    # LLaRA's own recipe is untouched
    assert pipeline_profile("long", "artist").prompts.item_order == "title-first"
    assert pipeline_profile("paper", "artist").prompts.item_order == "title-first"


def test_a_method_variant_is_a_row_of_its_own_name() -> None:
    assert llara_row("sasrec", "curriculum") == "LLaRA(SASRec)"
    tf = method_variants("token-first")
    assert llara_row("sasrec", "direct", tf) == "LLaRA+token-first(SASRec) [direct]"
    assert llara_row("sasrec", "text", tf) == "TALLRec+token-first"
    both = method_variants("token-first", "last-item")
    assert llara_row("sasrec", "curriculum", both) == "LLaRA+token-first+user(SASRec)"
    assert method_variants() == ()
