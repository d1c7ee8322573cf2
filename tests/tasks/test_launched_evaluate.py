"""Evaluation sharded over 2 processes (torchrun) gives exactly the 1-process artifact (slow)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from artifacts import ArtifactStore
from flows.profiles import pipeline_profile
from stages.evaluate import shard
from stages.launch import Resources
from stages.llm import prompts
from tasks.evaluate import evaluate
from tasks.llm import finetune, materialize_prompts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory, llm_inputs: dict[str, Path], backbone_cache: Path) -> Path:
    """A store with the tiny prompts, random embeddings and a 2-step smoke fine-tune."""
    root = tmp_path_factory.mktemp("shard") / "store"
    store = ArtifactStore(root)

    def copy_of(source: Path):
        return lambda out: shutil.copytree(source, out, dirs_exist_ok=True) and None

    data, _ = store.build("prepare", {"test": "tiny"}, {}, "test", copy_of(llm_inputs["dataset"]))
    emb, _ = store.build(
        "export-embeddings", {"test": "random"}, {}, "test", copy_of(llm_inputs["embeddings"])
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLARA_BACKBONE_CACHE", str(backbone_cache))
        prompt_set = materialize_prompts(data, prompts.PromptsConfig(backbone="tiny-random"), store)
        # 3 steps: at 2, seed 0's curriculum draws no hybrid step, a run the stage refuses
        config = replace(pipeline_profile("smoke", "movie").finetune, max_steps=3, val_rows=0)
        finetune(prompt_set, emb, config, store)
    return root


def _text(rows: list[dict]) -> str:
    return json.dumps(rows, sort_keys=True)


@pytest.mark.parametrize("mode", ["scoring", "generation"])
def test_two_process_evaluation_equals_one_process_exactly(
    trained_store: Path, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both ranks must work and the parent merge their rows, or nothing is shown: record the rows each
    # rank wrote before the merge reads them.
    rows_by_rank: dict[int, int] = {}
    real_groups = shard.evaluate_groups

    def recording_groups(*args, scratch: Path, **kwargs):
        outputs = real_groups(*args, scratch=scratch, **kwargs)
        for part in scratch.glob("group*-rank*.parquet"):
            rank = int(part.stem.rsplit("rank", 1)[1])
            rows_by_rank[rank] = rows_by_rank.get(rank, 0) + pq.read_metadata(part).num_rows
        return outputs

    monkeypatch.setattr(shard, "evaluate_groups", recording_groups)
    outputs = {}
    for world in (1, 2):
        root = tmp_path / f"world{world}"
        shutil.copytree(trained_store, root)
        store = ArtifactStore(root)
        model = next(a for a in store if a.stage == "finetune")
        prompt_set, emb = (
            store.get(model.manifest["inputs"]["prompts"]),
            store.get(model.manifest["inputs"]["embeddings"]),
        )
        # A small token budget gives each row scoring forwards of its own (3 units, 2 ranks);
        # generation batches 2 prompts (2 batches). One thread everywhere: a rank's share of the
        # cores is 1 here, and 2 threads in the one-process run sum some of these small forwards in
        # another order (scores equal to ~1e-6, not bit for bit).
        config = replace(
            pipeline_profile("smoke", "movie").evaluate,
            mode=mode,
            max_rows=None,
            batch_size=2,
            max_tokens_per_forward=64,
            threads=1,
        )
        resources = Resources(nproc_per_node=world) if world > 1 else None
        outputs[world] = evaluate(prompt_set, config, store, model, emb, resources=resources)
    one, two = outputs[1], outputs[2]
    assert one.id == two.id
    assert pq.read_table(two.path / "predictions.parquet").num_rows == 3  # every test row, 2 ranks
    assert rows_by_rank.keys() == {0, 1} and all(n > 0 for n in rows_by_rank.values()), rows_by_rank
    assert sum(rows_by_rank.values()) == 3
    for name in ("predictions.parquet", "metrics.parquet"):  # as JSON text: NaN (hr@1|valid) equals NaN
        assert _text(pq.read_table(two.path / name).to_pylist()) == _text(
            pq.read_table(one.path / name).to_pylist()
        )
    assert json.loads((two.path / "metrics.json").read_text()) == json.loads(
        (one.path / "metrics.json").read_text()
    )
