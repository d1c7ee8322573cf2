"""A fine-tune's evaluation row is named from its item-embedding artifact, for every kind of SR input:
the helper on each kind, then ``llara evaluate`` and ``llara stage evaluate`` on a fine-tune of the
embeddings that ``llara import-sr`` made (they used to end in ``KeyError: 'model'``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from artifacts import Artifact, ArtifactStore
from flows.cli import main
from flows.row_names import evaluation_row, recommender_of
from stages.errors import DataError
from stages.item_embeddings import save_item_embeddings
from tests.flows.test_server import tiny_movielens
from tests.stages.seqrec.test_seqrec_import import SASRec


def _embeddings(store: ArtifactStore, stage: str, **info) -> Artifact:
    def produce(out: Path) -> None:
        save_item_embeddings(torch.zeros(3, 4), out, **info)

    artifact, _ = store.build(stage, {"case": json.dumps(info)}, {}, "test", produce)
    return artifact


def _finetune(store: ArtifactStore, schedule: str) -> Artifact:
    artifact, _ = store.build(
        "finetune", {"config": {"schedule": schedule, "seed": 0}}, {}, "test", lambda out: None
    )
    return artifact


@pytest.mark.parametrize(
    ("stage", "model", "schedule", "row"),
    [
        ("embeddings", "sasrec", "curriculum", "LLaRA(SASRec)"),  # from pretrain
        ("embeddings", "gru4rec", "two-stage", "LLaRA(GRU4Rec) [two-stage]"),
        ("embeddings", "morec", "direct", "LLaRA(MoRec) [direct]"),
        ("embeddings", "sasrec-conv", "curriculum", "LLaRA(SASRec, conv)"),
        ("embeddings", "sasrec-released", "curriculum", "LLaRA(SASRec, released)"),  # from import-sr
        ("export-embeddings", "caser", "curriculum", "LLaRA(Caser)"),  # stored under the old name
        ("embeddings", "sasrec", "text", "TALLRec"),
    ],
)
def test_the_row_comes_from_what_the_embeddings_record(tmp_path, stage, model, schedule, row) -> None:
    store = ArtifactStore(tmp_path)
    embeddings = _embeddings(store, stage, model=model)
    assert recommender_of(embeddings) == model
    assert evaluation_row(_finetune(store, schedule), embeddings) == row


def test_a_method_variant_names_its_row(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    embeddings = _embeddings(store, "embeddings", model="sasrec")

    def produce(out: Path) -> None:
        (out / "summary.json").write_text(json.dumps({"item_order": "token-first"}))

    config = {"config": {"schedule": "direct", "seed": 0, "user_token": "last-item"}}
    trained, _ = store.build("finetune", config, {}, "test", produce)
    assert evaluation_row(trained, embeddings) == "LLaRA+token-first+user(SASRec) [direct]"


def test_embeddings_that_record_no_recommender_are_one_line_naming_the_field(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    embeddings = _embeddings(store, "embeddings", dataset="tiny")
    with pytest.raises(DataError, match=r"embedding.json \[field 'model'\]: missing"):
        evaluation_row(_finetune(store, "curriculum"), embeddings)


def _llara(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run ``llara ARGV`` in this process; its last stdout line (the artifact path)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--quiet", *argv])
    out, err = capsys.readouterr()
    if exit_info.value.code != 0:
        raise AssertionError(f"exit {exit_info.value.code}: " + (err.strip().splitlines() or [""])[-1])
    return out.strip().splitlines()[-1]


@pytest.mark.slow
def test_both_evaluate_commands_take_a_finetune_on_imported_embeddings(
    prefect_harness, tmp_path: Path, backbone_cache: Path, capsys, monkeypatch
) -> None:
    from stages.llm.prompts import PromptsConfig
    from tasks.llm import materialize_prompts

    monkeypatch.setenv("LLARA_BACKBONE_CACHE", str(backbone_cache))
    store = ArtifactStore(tmp_path / "store")
    at = ["--store", str(store.root)]
    source = tiny_movielens(tmp_path / "raw")  # raw movie ids 1..80 = release ids + 1
    torch.manual_seed(0)
    torch.save(SASRec(80), tmp_path / "movielens.pt")  # a whole module, as the authors saved theirs
    data = _llara(["prepare", source, *at], capsys)
    embeddings = Path(_llara(["import-sr", str(tmp_path / "movielens.pt"), "--data", data,
                              "--allow-pickle", *at], capsys))  # fmt: skip
    assert store.get(embeddings.name).stage == "embeddings"
    prompts = materialize_prompts(
        store.open(data), PromptsConfig(backbone="tiny-random", max_eval_rows=4), store
    ).path
    model = Path(_llara(["finetune", "--prompts", str(prompts), "--embeddings", str(embeddings),
                         "--profile", "smoke", *at], capsys))  # fmt: skip

    rows = {}
    for command in (
        ["evaluate", "--prompts", str(prompts), "--model", str(model), "--embeddings", str(embeddings)],
        ["stage", "evaluate", "--input", prompts.name, "--input", model.name],
    ):
        try:  # both commands, even when the first fails
            path = _llara([*command, "--profile", "smoke", *at], capsys)
            rows[command[0]] = (path, json.loads((Path(path) / "metrics.json").read_text())["row"])
        except AssertionError as failed:
            rows[command[0]] = (None, str(failed))
    assert {name: row for name, (_, row) in rows.items()} == {
        "evaluate": "LLaRA(SASRec, released)",
        "stage": "LLaRA(SASRec, released)",
    }
    assert rows["evaluate"][0] == rows["stage"][0]  # one evaluation: the second command a cache hit
