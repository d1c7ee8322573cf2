"""Fixtures shared across test packages: a tiny prepared dataset, random item embeddings, and a
prompts artifact for the tiny-random backbone (built once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stages.item_embeddings import save_item_embeddings
from stages.seqrec.data import EXAMPLE_COLUMNS, write_prepared

N_ITEMS = 40
WORDS = ["toy", "story", "heat", "casino", "love", "war", "star", "night", "city", "dark", "king", "dream"]


def make_dataset(root: Path, n_train_users: int = 6, seed: int = 0) -> Path:
    """A prepared dataset in the stage contract's format: 40 items, a few users, domain movie."""
    rng = np.random.default_rng(seed)
    titles = [
        f"{WORDS[i % len(WORDS)].title()} {WORDS[(i * 5 + 3) % len(WORDS)]} {i}" for i in range(N_ITEMS)
    ]
    rows: dict[str, list] = {c: [] for c in EXAMPLE_COLUMNS}
    user = 0
    for split, users in (("train", n_train_users), ("val", 3), ("test", 3)):
        for _ in range(users):
            seq = rng.choice(N_ITEMS, size=12, replace=False).tolist()
            for t in range(3, 12) if split == "train" else [11]:
                history, cands = seq[max(0, t - 10) : t], None
                if split != "train":
                    pool = [i for i in range(N_ITEMS) if i not in history and i != seq[t]]
                    cands = rng.choice(pool, size=19, replace=False).tolist() + [seq[t]]
                    rng.shuffle(cands)
                for key, value in zip(EXAMPLE_COLUMNS, (split, user, history, seq[t], cands), strict=True):
                    rows[key].append(value)
            user += 1
    return write_prepared(root, titles, rows, name="tiny", seed=seed)


def make_embeddings(root: Path, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    table = torch.randn(N_ITEMS, 64, generator=torch.Generator().manual_seed(seed))
    save_item_embeddings(table, root, model="random")
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
