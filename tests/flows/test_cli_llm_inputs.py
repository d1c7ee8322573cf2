"""`llara finetune` and `llara evaluate` on broken or mismatched inputs: one line naming the file
and the field, exit code 2, nothing published (cases in tests/stages/llm/bad_inputs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from artifacts import ArtifactStore
from flows.cli import main
from stages.llm.backbone import resolve_backbone_dir
from stages.llm.prompts import PromptsConfig
from tasks.llm import materialize_prompts
from tests.conftest import make_dataset, make_embeddings
from tests.stages.llm.bad_inputs import CASES, World


def _cli(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, backbone_cache: Path):
    root = tmp_path_factory.mktemp("llm-bad-inputs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLARA_BACKBONE_CACHE", str(backbone_cache))
        store = ArtifactStore(root / "store")
        dataset, _ = store.build("prepare", {}, {}, "test", lambda out: {"dir": make_dataset(out)})
        prompts = materialize_prompts(dataset, PromptsConfig(backbone="tiny-random", max_eval_rows=4), store)
        emb, _ = store.build("embeddings", {}, {}, "test", lambda out: {"dir": make_embeddings(out)})
        argv = ["--quiet", "finetune", "--prompts", str(prompts.path), "--embeddings", str(emb.path)]
        assert _cli([*argv, "--profile", "smoke", "--store", str(store.root)]) == 0
        model = store.latest("finetune")
        assert model is not None
        yield World(root, store, dataset, prompts, emb, model, resolve_backbone_dir("tiny-random"))


def test_the_good_chain_evaluates(world: World, capsys: pytest.CaptureFixture) -> None:
    argv = ["--quiet", "evaluate", "--prompts", str(world.prompts.path), "--model", str(world.model.path)]
    assert _cli([*argv, "--profile", "smoke", "--store", str(world.store.root)]) == 0
    out = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out / "metrics.json").is_file() and world.store.get(out.name).stage == "evaluate"


@pytest.mark.parametrize(("case_id", "build", "field", "file"), CASES, ids=[c[0] for c in CASES])
def test_bad_llm_input_is_one_line_naming_file_and_field(
    world: World, case_id, build, field, file, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--quiet", *build(world), "--store", str(world.store.root)]
    before = {a.id for a in world.store}
    capsys.readouterr()
    code = _cli(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: ") and file in line and "Traceback" not in line, line
    assert (f"[field {field!r}]" in line) if field else ("[field" not in line), line
    assert {a.id for a in world.store} == before  # nothing published
