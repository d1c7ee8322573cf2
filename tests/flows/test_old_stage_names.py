"""An artifact stored under an old stage name: ``llara store ls`` lists and marks it, the cache
never reuses it, and naming it by id still works (with a warning)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from artifacts import ArtifactError, ArtifactStore, stage_code_version
from flows.cli import app
from flows.common import resolve
from stages.seqrec import embeddings as embeddings_stage
from stages.seqrec.pretrain import PretrainConfig
from tasks.common import identity_of, run_stage
from tasks.pretrain import train
from tests.conftest import make_dataset


def test_an_old_named_artifact_is_listed_marked_and_not_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ArtifactStore(tmp_path / "store")
    source = make_dataset(tmp_path / "dataset")
    copy = lambda out: shutil.copytree(source, out, dirs_exist_ok=True) and None  # noqa: E731
    data, _ = store.build("prepare", {"test": 1}, {}, "test", copy)
    recipe = PretrainConfig(model="sasrec", epochs=1, patience=1, threads=1, progress=False)
    model = train(data, recipe, store)
    # What the stage wrote when it was called export-embeddings: the same config, input and code.
    config = embeddings_stage.EmbeddingsConfig()
    old, _ = store.build(
        "export-embeddings",
        {"config": identity_of(config)},
        {"model": model},
        stage_code_version(embeddings_stage),
        lambda out: embeddings_stage.run(config, {"model": model.path}, out),
    )

    ls = ["store", "ls", "--store", str(store.root)]
    listing = CliRunner().invoke(app, ls).output
    row = next(line for line in listing.splitlines() if line.startswith(old.id))
    assert "export-embeddings" in row and "old stage name, now embeddings" in row
    assert old.id in CliRunner().invoke(app, [*ls, "--stage", "embeddings"]).output

    with pytest.raises(ArtifactError, match="no embeddings artifact yet"):
        resolve(store, "embeddings", None)  # the latest-of-stage lookup skips it
    new, hit = run_stage("embeddings", config, {"model": model}, store)
    assert not hit and new.id != old.id and new.stage == "embeddings"
    assert resolve(store, "embeddings", None).id == new.id

    with caplog.at_level(logging.WARNING, logger="llara"):
        assert resolve(store, "embeddings", old.id).id == old.id  # named by id: used, with a warning
    assert "old stage name 'export-embeddings'" in caplog.text
