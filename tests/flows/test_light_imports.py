"""The flows, the tasks and every stage config load without torch, transformers, peft, DeepSpeed or
matplotlib: a fully cached ``llara run`` only reads the store, so it must not pay their import time.

The stage modules (``stages.registry``) load them; the tasks import a stage module only when its
artifact is computed (``tasks.common.stage_run``).
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY_LIBRARIES = ("torch", "transformers", "peft", "deepspeed", "matplotlib", "sentence_transformers")

LIGHT_MODULES = (
    "flows.cli",
    "flows.reproduce",
    "flows.stage_flows",
    "flows.profiles",
    "tasks.prepare",
    "tasks.pretrain",
    "tasks.llm",
    "tasks.evaluate",
    "tasks.launched",
    "stages.preprocess.config",
    "stages.seqrec.config",
    "stages.llm.config",
    "stages.evaluate.config",
    "stages.report.config",
)


def _loaded_after(program: str) -> list[str]:
    report = f"print(json.dumps(sorted(m for m in {HEAVY_LIBRARIES!r} if m in sys.modules)))"
    check = f"import json, sys\n{program}\n{report}"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_flows_tasks_and_configs_import_no_heavy_library() -> None:
    imports = "\n".join(f"import {m}" for m in LIGHT_MODULES)
    assert _loaded_after(imports) == []


def test_building_every_profile_imports_no_heavy_library() -> None:
    program = (
        "from flows.profiles import pipeline_profile\n"
        "for name in ('smoke', 'quick', 'paper'):\n"
        "    for domain in ('movie', 'artist', 'game'):\n"
        "        pipeline_profile(name, domain)"
    )
    assert _loaded_after(program) == []


def test_a_stage_module_does_load_them() -> None:
    # the check above can fail: importing a stage's own module brings torch in
    assert "torch" in _loaded_after("import stages.seqrec.pretrain")
