"""Stage ``import-sr``: a released LLaRA SASRec checkpoint as a ``pretrain``-like artifact.

inputs: ``{"data": prepared dataset}``. Reads the checkpoint with the restricted unpickler
(:mod:`stages.seqrec.checkpoint`; nothing in the pickle runs), maps its item rows onto the dataset's
item ids, and writes what ``pretrain`` writes (``model.safetensors``, ``config.json``,
``metrics.json``, ``scores_val.parquet``, ``scores_test.parquet``), the network being our
re-implementation (:mod:`stages.seqrec.released`) scored on our frozen candidates. The
``embeddings`` stage then turns it into the embedding table stage 2 reads, as for pretrain.

Item ids: a checkpoint row is a release id (0-based). A dataset imported from the release
(``llara-release:``) has ``raw_id`` = that id; a MovieLens-100K dataset built from the raw files has
``raw_id`` = movie id = release id + 1 (PROVENANCE.md). Other datasets cannot be matched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from stages.errors import DataError
from stages.files import sha256_file
from stages.seqrec.checkpoint import read_checkpoint
from stages.seqrec.config import IMPORTED_MODEL, ImportConfig
from stages.seqrec.data import MAX_LEN, load_prepared
from stages.seqrec.pretrain import score_and_save
from stages.seqrec.released import RENAME, from_tensors

NAME = "import-sr"
MODEL = IMPORTED_MODEL
LOSS = "authors"  # trained by the LLaRA authors (lr 1e-3, L2 1e-4, seed 1234, per the archive name)
RAW_MOVIELENS = ("bundled", "ml100k", "recbole")  # sources whose raw movie ids are release id + 1


def release_rows(data_dir: Path, n_items: int, n_rows: int, file: str) -> np.ndarray:
    """``rows[i]`` = the checkpoint row of our item ``i``; a one-line error when ids cannot match."""
    meta = json.loads((data_dir / "dataset.json").read_text())
    kind = str(meta.get("source", "")).partition(":")[0]
    if kind == "llara-release":
        offset = 0
    elif kind in RAW_MOVIELENS and meta.get("domain") == "movie":
        offset = 1
    else:
        raise DataError(file, "item_embeddings.weight", f"cannot match the checkpoint's item ids to dataset "
                        f"{meta.get('name')!r} (source {meta.get('source')!r}); prepare it from the release "
                        "(llara-release:DIR) or, for MovieLens-100K, from the raw files")
    if n_rows != n_items:
        raise DataError(file, "item_embeddings.weight", f"the checkpoint has {n_rows} items, dataset "
                        f"{meta.get('name')!r} has {n_items}: not the same catalogue")
    items = pq.read_table(data_dir / "items.parquet", columns=["item_id", "raw_id"]).to_pydict()
    rows = np.full(n_items, -1, dtype=np.int64)
    for item, raw in zip(items["item_id"], items["raw_id"], strict=True):
        try:
            rows[item] = int(raw) - offset
        except (TypeError, ValueError):
            raise DataError(data_dir / "items.parquet", "raw_id", f"item {item}: raw id {raw!r} is not an "
                            "integer, so it has no row in the checkpoint") from None
    if rows.min() < 0 or rows.max() >= n_rows or len(np.unique(rows)) != n_items:
        raise DataError(data_dir / "items.parquet", "raw_id", f"raw ids do not map one to one onto the "
                        f"checkpoint's {n_rows} items")
    return rows


def _reindex(tensors: dict[str, torch.Tensor], rows: np.ndarray) -> dict[str, torch.Tensor]:
    """Reorder item rows (embedding rows, head rows) from release ids to our ids; padding stays last."""
    index = torch.from_numpy(rows)
    out = dict(tensors)
    emb = tensors["item_embeddings.weight"]
    out["item_embeddings.weight"] = torch.cat([emb[index], emb[-1:]])
    out["s_fc.weight"], out["s_fc.bias"] = tensors["s_fc.weight"][index], tensors["s_fc.bias"][index]
    return out


def run(config: ImportConfig, inputs: dict[str, Path], out_dir: Path) -> dict:
    ckpt = read_checkpoint(Path(config.file), allow_pickle=config.allow_pickle)
    data_dir = Path(inputs["data"])
    data = load_prepared(data_dir)
    n_rows = int(ckpt.tensors["s_fc.weight"].shape[0]) if "s_fc.weight" in ckpt.tensors else -1
    from_tensors(ckpt.tensors, config.file, MAX_LEN)  # checks names and shapes before matching ids
    rows = release_rows(data_dir, data.n_items, n_rows, config.file)
    model = from_tensors(_reindex(ckpt.tensors, rows), config.file, MAX_LEN)

    out_dir = Path(out_dir)
    reports = score_and_save(model, data, config.seed, out_dir)
    # the fields load_model and the embeddings stage read, as a pretrain artifact has them
    cfg = {"model": MODEL, "loss": LOSS, "dim": int(ckpt.tensors["item_embeddings.weight"].shape[1]),
           "dropout": config.dropout, "seed": config.seed, "file": Path(config.file).name,
           "file_sha256": sha256_file(config.file), "archive_name": ckpt.archive_name}
    meta = {"config": cfg, "n_items": data.n_items, "max_len": MAX_LEN, "dataset": data.name,
            "checkpoint_attributes": ckpt.attributes,
            "tensors": {RENAME.get(k, k): list(v.shape) for k, v in ckpt.tensors.items()}}
    (out_dir / "config.json").write_text(json.dumps(meta, indent=2))
    metrics = {"model": MODEL, "loss": LOSS, "dataset": data.name, "seed": config.seed,
               "source_file": Path(config.file).name, "archive_name": ckpt.archive_name,
               "train_rows": len(data.splits["train"]), "val": reports["val"], "test": reports["test"]}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return {"model": MODEL, "dataset": data.name, "file": Path(config.file).name,
            "val_hr@1": reports["val"]["hr@1"]["mean"], "test_hr@1": reports["test"]["hr@1"]["mean"]}
