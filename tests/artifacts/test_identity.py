"""A stage's code version follows its imports into shared ``stages`` modules."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import pytest

from artifacts.identity import artifact_id, stage_code_version

REPO = Path(__file__).resolve().parents[2]


def stage_module(root: Path, relative: str) -> ModuleType:
    """A module object for a file of the copied tree (only its ``__file__`` is read)."""
    module = ModuleType(relative.removesuffix(".py").replace("/", "."))
    module.__file__ = str(root / relative)
    return module


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "stages", tmp_path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


STAGES = {
    "prepare": "stages/preprocess/__init__.py",
    "prompts": "stages/llm/prompts.py",
    "finetune": "stages/llm/finetune.py",
    "pretrain": "stages/seqrec/pretrain.py",
    "evaluate": "stages/evaluate/evaluate.py",
    "report": "stages/report/report.py",
}


def versions(root: Path) -> dict[str, str]:
    return {stage: stage_code_version(stage_module(root, path)) for stage, path in STAGES.items()}


def edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")


def test_editing_the_candidate_draw_changes_the_ids_of_the_stages_that_use_it(tree: Path) -> None:
    before = versions(tree)
    edit(tree / "stages/candidates.py")
    after = versions(tree)
    changed = {stage for stage in STAGES if before[stage] != after[stage]}
    assert changed == {"prepare", "prompts", "finetune"}  # seqrec and the rest read stored candidates
    old_id = artifact_id("finetune", {"seed": 0}, {"prompts": "p"}, before["finetune"])
    assert artifact_id("finetune", {"seed": 0}, {"prompts": "p"}, after["finetune"]) != old_id


def test_editing_the_dataset_contract_changes_its_writer_and_readers(tree: Path) -> None:
    before = versions(tree)
    edit(tree / "stages/contract.py")
    after = versions(tree)
    assert before["prepare"] != after["prepare"] and before["pretrain"] != after["pretrain"]


def test_lazy_imports_inside_functions_count(tree: Path) -> None:
    # stages/evaluate/evaluate.py imports stages.llm.backbone inside a function
    before = versions(tree)
    edit(tree / "stages/llm/backbone.py")
    assert versions(tree)["evaluate"] != before["evaluate"]


def test_an_unrelated_module_leaves_a_stage_alone(tree: Path) -> None:
    before = versions(tree)
    edit(tree / "stages/report/plots.py")
    after = versions(tree)
    assert {s for s in STAGES if before[s] != after[s]} == {"report"}


def test_the_copy_hashes_like_the_checkout(tree: Path) -> None:
    # paths enter the hash relative to the project root, so a checkout elsewhere gets the same ids
    assert versions(tree) == versions(REPO)
