"""The flows, the tasks and every stage config load without torch, transformers, peft, DeepSpeed or
matplotlib: a fully cached ``llara run`` only reads the store, so it must not pay their import time.

The stage modules (``stages.registry``) load them; the tasks import a stage module only when its
artifact is computed (``tasks.common.stage_run``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def _loaded_after(program: str, also: tuple[str, ...] = ()) -> list[str]:
    report = f"print(json.dumps(sorted(m for m in {HEAVY_LIBRARIES + also!r} if m in sys.modules)))"
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


def test_llara_prepare_imports_neither_torch_nor_prefect(tmp_path: Path) -> None:
    # the command on a fresh store: its stage computes with polars only, and no flow runs
    program = (
        "import sys\n"
        "from flows.cli import app\n"
        f"sys.argv = ['llara', 'prepare', 'bundled:movielens-100k', '--store', {str(tmp_path / 'store')!r}]\n"
        "try:\n"
        "    app()\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code"
    )
    loaded = _loaded_after(program, also=("prefect",))
    assert (tmp_path / "store" / "objects").is_dir()  # the stage did run
    assert loaded == []


def test_a_stage_that_loads_torch_itself_leaves_its_defaults() -> None:
    # the scope saves torch's state only when torch is loaded; one loaded inside is reset after
    fresh = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        capture_output=True,
        text=True,
        check=True,
    )
    program = (
        "from stages.process import scoped_process_state\n"
        "with scoped_process_state():\n"
        "    import torch\n"
        "    torch.set_num_threads(1)\n"
        "    torch.use_deterministic_algorithms(True)\n"
        f"assert torch.get_num_threads() == {int(fresh.stdout)}, torch.get_num_threads()\n"
        "assert not torch.are_deterministic_algorithms_enabled()"
    )
    assert _loaded_after(program) == ["torch"]
