"""Fixtures shared across test packages: a tiny prepared dataset, random item embeddings, and a
prompts artifact for the tiny-random backbone (built once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import save_file

N_ITEMS = 40
WORDS = ["toy", "story", "heat", "casino", "love", "war", "star", "night", "city", "dark", "king", "dream"]


def make_dataset(root: Path, n_train_users: int = 6, seed: int = 0) -> Path:
    """A prepared dataset in the stage contract's format: 40 items, a few users, domain movie."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    titles = [
        f"{WORDS[i % len(WORDS)].title()} {WORDS[(i * 5 + 3) % len(WORDS)]} {i}" for i in range(N_ITEMS)
    ]
    pq.write_table(
        pa.table(
            {
                "item_id": pa.array(range(N_ITEMS), pa.int32()),
                "title": titles,
                "raw_id": [str(i + 1) for i in range(N_ITEMS)],
            }
        ),
        root / "items.parquet",
    )
    rows = {"split": [], "user_id": [], "history": [], "target": [], "candidates": []}
    user = 0
    for split, users in (("train", n_train_users), ("val", 3), ("test", 3)):
        for _ in range(users):
            seq = rng.choice(N_ITEMS, size=12, replace=False).tolist()
            starts = range(3, 12) if split == "train" else [11]
            for t in starts:
                history = seq[max(0, t - 10) : t]
                rows["split"].append(split)
                rows["user_id"].append(user)
                rows["history"].append(history)
                rows["target"].append(seq[t])
                if split == "train":
                    rows["candidates"].append(None)
                else:
                    pool = [i for i in range(N_ITEMS) if i not in history and i != seq[t]]
                    cands = rng.choice(pool, size=19, replace=False).tolist() + [seq[t]]
                    rng.shuffle(cands)
                    rows["candidates"].append(cands)
            user += 1
    schema = pa.schema(
        [
            ("split", pa.string()),
            ("user_id", pa.int32()),
            ("history", pa.list_(pa.int32())),
            ("target", pa.int32()),
            ("candidates", pa.list_(pa.int32())),
        ]
    )
    pq.write_table(pa.table(rows, schema=schema), root / "examples.parquet")
    meta = {
        "name": "tiny",
        "domain": "movie",
        "n_items": N_ITEMS,
        "n_users": user,
        "splits": {s: rows["split"].count(s) for s in ("train", "val", "test")},
        "seed": 0,
        "title_mode": "clean",
        "candidates_sha256": "x",
    }
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def make_embeddings(root: Path, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    table = torch.randn(N_ITEMS, 64, generator=torch.Generator().manual_seed(seed))
    save_file({"item_embeddings": table}, str(root / "item_embeddings.safetensors"))
    (root / "embedding.json").write_text(json.dumps({"model": "random", "n_items": N_ITEMS, "dim": 64}))
    return root


@pytest.fixture(scope="session")
def backbone_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backbones")


@pytest.fixture(scope="session")
def llm_inputs(tmp_path_factory: pytest.TempPathFactory, backbone_cache: Path) -> dict[str, Path]:
    """{"dataset", "embeddings", "prompts"} directories built once per session (tiny-random backbone)."""
    from stages.llm import prompts

    root = tmp_path_factory.mktemp("llm")
    dataset = make_dataset(root / "dataset")
    embeddings = make_embeddings(root / "embeddings")
    out = root / "prompts"
    out.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLARA_BACKBONE_CACHE", str(backbone_cache))
        prompts.run(prompts.PromptsConfig(backbone="tiny-random"), {"dataset": dataset}, out)
    return {"dataset": dataset, "embeddings": embeddings, "prompts": out}
