"""A stage run through ``run_stage`` leaves the process as it found it (threads, RNG, environment)."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from artifacts import ArtifactStore
from stages.seqrec.pretrain import PretrainConfig
from tasks.pretrain import train_recommender


def test_a_stage_that_sets_threads_and_seeds_restores_them(
    llm_inputs: dict[str, Path], tmp_path: Path
) -> None:
    store = ArtifactStore(tmp_path / "store")
    source = llm_inputs["dataset"]
    data, _ = store.build(
        "prepare",
        {"test": 1},
        {},
        "test",
        lambda out: shutil.copytree(source, out, dirs_exist_ok=True) and None,
    )
    torch.set_num_threads(2)
    torch.manual_seed(123)
    random.seed(7)
    np.random.seed(7)
    before = (
        torch.random.get_rng_state(),
        random.getstate(),
        np.random.get_state()[1].copy(),
        dict(os.environ),
    )
    config = PretrainConfig(model="sasrec", epochs=1, patience=1, threads=1, seed=5, progress=False)
    train_recommender(data, config, store)  # sets one thread and seeds torch inside
    assert torch.get_num_threads() == 2
    assert torch.equal(torch.random.get_rng_state(), before[0]) and random.getstate() == before[1]
    assert np.array_equal(np.random.get_state()[1], before[2]) and dict(os.environ) == before[3]
