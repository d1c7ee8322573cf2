"""`llara finetune` through the real CLI: --set overrides, one-line errors, and a text-only projector."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from artifacts import ArtifactStore
from stages.llm import prompts
from tasks.llm import materialize_prompts

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store_with_inputs(
    tmp_path_factory: pytest.TempPathFactory, llm_inputs: dict[str, Path], backbone_cache: Path
) -> tuple[Path, str, str]:
    """A store holding the tiny dataset, its tiny-random prompts and an embedding artifact."""
    root = tmp_path_factory.mktemp("cli-finetune") / "store"
    store = ArtifactStore(root)

    def copy_of(source: Path):
        return lambda out: shutil.copytree(source, out, dirs_exist_ok=True) and None

    data, _ = store.build("prepare", {"test": "tiny"}, {}, "test", copy_of(llm_inputs["dataset"]))
    embeddings, _ = store.build(
        "embeddings", {"test": "random"}, {}, "test", copy_of(llm_inputs["embeddings"])
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLARA_BACKBONE_CACHE", str(backbone_cache))
        prompt_set = materialize_prompts(data, prompts.PromptsConfig(backbone="tiny-random"), store)
    return root, str(prompt_set.path), str(embeddings.path)


def llara(*args: str, store: Path, cache: Path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "LLARA_STORE": str(store),
        "PYTHONPATH": str(REPO),
        "LLARA_BACKBONE_CACHE": str(cache),
        **extra_env,
    }
    env.update(OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    command = [sys.executable, "-m", "flows.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("max_step=4", "max_step"),
        ("max_steps=four", "max_steps"),
        ("selection_metric=test_hr1", "selection_metric"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(store_with_inputs, backbone_cache, setting, named) -> None:
    store, prompt_dir, embeddings = store_with_inputs
    finetune = ("finetune", "--profile", "smoke", "--prompts", prompt_dir, "--embeddings", embeddings)
    result = llara(*finetune, "--set", setting, store=store, cache=backbone_cache)
    assert result.returncode == 2 and named in result.stderr and "Traceback" not in result.stderr
    assert not any(a.stage == "finetune" for a in ArtifactStore(store))


def test_text_schedule_leaves_the_projector_at_its_initialisation(store_with_inputs, backbone_cache) -> None:
    """`--schedule text` with 4 and with 8 steps: identical projector tensors (it never trains)."""
    store, prompt_dir, embeddings = store_with_inputs
    finetune = ("finetune", "--profile", "smoke", "--prompts", prompt_dir, "--embeddings", embeddings)
    outputs = []
    for steps in (4, 8):
        sets = (
            "--set",
            f"max_steps={steps}",
            "--set",
            "val_rows=0",
        )  # keep the last step, not a selected one
        result = llara(*finetune, "--schedule", "text", *sets, store=store, cache=backbone_cache)
        assert result.returncode == 0, result.stderr[-3000:]
        out = Path(result.stdout.strip().splitlines()[-1])
        summary = json.loads((out / "summary.json").read_text())
        assert summary["steps"] == steps and summary["schedule"] == "text"
        manifest = json.loads((out / "manifest.json").read_text())
        assert set(manifest["inputs"]) == {"prompts", "embeddings"}  # the summary must not overwrite them
        outputs.append(out)
    four, eight = (load_file(str(o / "projector.safetensors")) for o in outputs)
    assert four.keys() == eight.keys() and all((four[k] == eight[k]).all() for k in four)
    lora4, lora8 = (load_file(str(o / "adapter" / "adapter_model.safetensors")) for o in outputs)
    assert any(not (lora4[k] == lora8[k]).all() for k in lora4)  # LoRA did train further
