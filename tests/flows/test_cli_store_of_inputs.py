"""An artifact given by path is read from its own store, with its own lineage, and what a command
makes from it goes there; a ``--store`` naming another store is refused in one line that names the
store holding it. For ``llara finetune``, ``llara evaluate`` and ``llara import-sr``."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from artifacts import Artifact, ArtifactStore
from flows.cli import main
from stages.llm.prompts import PromptsConfig
from tasks.llm import materialize_prompts
from tests.conftest import make_dataset, make_embeddings
from tests.stages.seqrec.conftest import write_walks
from tests.stages.seqrec.test_seqrec_import import SASRec, toy_dataset


@dataclass
class Stores:
    home: ArtifactStore
    """Where every input lives."""
    other: ArtifactStore
    """Another store with nothing in it."""
    prompts: Artifact
    embeddings: Artifact
    model: Artifact
    walks: Artifact
    checkpoint: Path


def _released_walks(out: Path) -> None:
    """The toy walks as if prepared from a release, whose item ids a released checkpoint uses."""
    toy = toy_dataset(write_walks(out / "walks"), out / "released")
    for file in toy.iterdir():
        file.rename(out / file.name)
    shutil.rmtree(out / "walks")
    shutil.rmtree(out / "released")


def _cli(argv: list[str]) -> tuple[int, list[str], list[str]]:
    """``llara --quiet ARGV`` in this process: (exit code, stdout lines, stderr lines)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main(["--quiet", *argv])
    return exit_info.value.code, out.getvalue().strip().splitlines(), err.getvalue().strip().splitlines()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, backbone_cache: Path):
    root = tmp_path_factory.mktemp("two-stores")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLARA_BACKBONE_CACHE", str(backbone_cache))
        mp.delenv("LLARA_STORE", raising=False)
        mp.chdir(root)  # the default store would be ./.llara/store here: it must stay empty
        home, other = ArtifactStore(root / "home"), ArtifactStore(root / "other")
        dataset, _ = home.build("prepare", {}, {}, "test", lambda out: {"dir": make_dataset(out)})
        prompts = materialize_prompts(dataset, PromptsConfig(backbone="tiny-random", max_eval_rows=4), home)
        emb, _ = home.build("embeddings", {}, {}, "test", lambda out: {"dir": make_embeddings(out)})
        walks, _ = home.build("prepare", {"walks": 1}, {}, "test", lambda out: _released_walks(out))
        torch.manual_seed(0)
        torch.save(SASRec(30), root / "released.pt")
        # no --store: the command works in the store of the paths it is given, with their lineage
        code, out, err = _cli(["finetune", "--prompts", str(prompts.path), "--embeddings", str(emb.path),
                               "--profile", "smoke"])  # fmt: skip
        assert code == 0, err
        model = Path(out[-1])
        assert model.parent == home.objects and home.get(model.name).stage == "finetune"
        yield Stores(home, other, prompts, emb, home.get(model.name), walks, root / "released.pt")
        assert not (root / ".llara").exists()


def test_a_fine_tune_of_paths_is_published_in_their_store(stores: Stores) -> None:
    manifest = stores.model.manifest
    assert manifest["inputs"] == {"embeddings": stores.embeddings.id, "prompts": stores.prompts.id}
    training = json.loads((stores.model.path / "summary.json").read_text())
    assert training["rows_seen"] == training["steps"] * 4 and training["dataset_train_rows"] == 54


def test_an_evaluation_of_paths_is_published_in_their_store(stores: Stores, monkeypatch) -> None:
    monkeypatch.delenv("LLARA_STORE", raising=False)
    argv = ["evaluate", "--prompts", str(stores.prompts.path), "--model", str(stores.model.path)]
    code, out, err = _cli([*argv, "--profile", "smoke"])
    assert code == 0, err
    result = Path(out[-1])
    assert result.parent == stores.home.objects  # the model's embeddings came from its own store
    metrics = json.loads((result / "metrics.json").read_text())
    summary = json.loads((stores.model.path / "summary.json").read_text())
    assert metrics["training"]["steps"] == summary["steps"]
    assert metrics["training"]["rows_seen"] == summary["rows_seen"]
    assert metrics["training"]["epochs"] == pytest.approx(summary["rows_seen"] / 54)


def test_an_imported_checkpoint_on_a_dataset_path_is_published_in_its_store(
    stores: Stores, monkeypatch
) -> None:
    monkeypatch.delenv("LLARA_STORE", raising=False)
    argv = ["import-sr", str(stores.checkpoint), "--data", str(stores.walks.path), "--allow-pickle"]
    code, out, err = _cli(argv)
    assert code == 0, err
    embeddings = stores.home.get(Path(out[-1]).name)
    assert embeddings.stage == "embeddings" and stores.home.get(embeddings.manifest["inputs"]["model"])


COMMANDS = {
    "finetune": lambda s: ["finetune", "--prompts", str(s.prompts.path),
                           "--embeddings", str(s.embeddings.path), "--profile", "smoke"],
    "evaluate": lambda s: ["evaluate", "--prompts", str(s.prompts.path), "--model", str(s.model.path),
                           "--profile", "smoke"],
    "import-sr": lambda s: ["import-sr", str(s.checkpoint), "--data", str(s.walks.path), "--allow-pickle"],
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_path_into_another_store_than_store_is_refused_naming_its_store(
    stores: Stores, command: str
) -> None:
    code, _, err = _cli([*COMMANDS[command](stores), "--store", str(stores.other.root)])
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and f"is in store {stores.home.root}" in err[0], err
    assert f"--store {stores.home.root}" in err[0], err  # how to use it
    assert list(stores.other) == [] and not (stores.other.root / "objects").exists()
