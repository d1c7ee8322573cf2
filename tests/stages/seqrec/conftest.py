"""A tiny prepared dataset in the exact ``prepare`` contract, with learnable structure.

Every user walks the catalogue in steps of +1 (mod n_items) from a random start, so the next item
is a deterministic function of the last one: any working recommender should beat random guessing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stages.seqrec.data import write_prepared

N_ITEMS = 30


def write_walks(root: Path, n_items: int = N_ITEMS, n_users: int = 60, seed: int = 0) -> Path:
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
    titles = [f"Item number {i}" for i in range(n_items)]
    return write_prepared(root, titles, rows, name="toy", seed=seed)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)  # the CI box is shared; the toy models gain nothing from threads
    return write_walks(tmp_path_factory.mktemp("seqrec") / "prepared")
