"""A tiny prepared dataset in the exact ``prepare`` contract, with learnable structure.

Every user walks the catalogue in steps of +1 (mod n_items) from a random start, so the next item
is a deterministic function of the last one: any working recommender should beat random guessing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

N_ITEMS = 30


def write_prepared(root: Path, n_items: int = N_ITEMS, n_users: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = {"split": [], "user_id": [], "history": [], "target": [], "candidates": []}
    n_train = int(n_users * 0.8)
    for u in range(n_users):
        start, length = int(rng.integers(n_items)), int(rng.integers(5, 14))
        seq = [(start + t) % n_items for t in range(length)]
        split = "train" if u < n_train else ("val" if u < n_train + (n_users - n_train) // 2 else "test")
        positions = range(3, length) if split == "train" else [length - 1]
        for t in positions:
            hist, target = seq[max(0, t - 10) : t], seq[t]
            cands = None
            if split != "train":
                pool = [i for i in range(n_items) if i != target and i not in hist]
                cands = [target, *rng.choice(pool, 19, replace=False).tolist()]
                rng.shuffle(cands)
            for k, v in zip(rows, (split, u, hist, target, cands), strict=True):
                rows[k].append(v)
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "split": pa.array(rows["split"], pa.string()),
        "user_id": pa.array(rows["user_id"], pa.int32()),
        "history": pa.array(rows["history"], pa.list_(pa.int32())),
        "target": pa.array(rows["target"], pa.int32()),
        "candidates": pa.array(rows["candidates"], pa.list_(pa.int32())),
    }), root / "examples.parquet")
    pq.write_table(pa.table({
        "item_id": pa.array(range(n_items), pa.int32()),
        "title": pa.array([f"Item number {i}" for i in range(n_items)], pa.string()),
        "raw_id": pa.array([str(i + 1) for i in range(n_items)], pa.string()),
    }), root / "items.parquet")
    splits = {s: rows["split"].count(s) for s in ("train", "val", "test")}
    (root / "dataset.json").write_text(json.dumps({
        "name": "toy", "domain": "movie", "n_items": n_items, "n_users": n_users, "splits": splits,
        "seed": seed, "title_mode": "clean", "candidates_sha256": "0" * 64}))
    (root / "card.md").write_text("toy dataset\n")
    return root


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)  # the CI box is shared; the toy models gain nothing from threads
    return write_prepared(tmp_path_factory.mktemp("seqrec") / "prepared")
