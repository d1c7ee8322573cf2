"""A stage leaves the process as it found it: threads, RNG streams, determinism flag, environment.

``llara run`` runs every stage in one process. The recommender stage sets one torch thread and
seeds torch; DeepSpeed's set-up writes RANK, MASTER_PORT and friends into the environment. Without
this scope those settings leak into the stages that follow (the LLM stages then ran on one core).
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def scoped_process_state() -> Iterator[None]:
    """Run a block, then restore torch's thread count, every RNG state, the deterministic-algorithms
    flag and the environment variables to what they were before it.

    A stage that computes without torch (``prepare``) must not pay its import (about 2.5 s): torch's
    state is saved only when torch is already loaded, as it is once a stage module that uses it
    has been imported. If the block loads torch itself, torch's defaults are put back after it."""
    torch = sys.modules.get("torch")
    python_rng, numpy_rng = random.getstate(), np.random.get_state()
    environment = dict(os.environ)
    saved = _torch_state(torch) if torch is not None else None
    try:
        yield
    finally:
        random.setstate(python_rng)
        np.random.set_state(numpy_rng)
        for key in set(os.environ) - set(environment):
            del os.environ[key]
        os.environ.update(environment)
        torch = sys.modules.get("torch")
        if torch is not None:
            _restore_torch_state(torch, saved)


def _torch_state(torch: ModuleType) -> dict[str, Any]:
    return {
        "threads": torch.get_num_threads(),
        "rng": torch.random.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }


def _restore_torch_state(torch: ModuleType, saved: dict[str, Any] | None) -> None:
    if saved is None:  # loaded inside the block: back to what a fresh import would give
        torch.set_num_threads(_default_threads())
        torch.use_deterministic_algorithms(False)
        return
    torch.set_num_threads(saved["threads"])
    torch.random.set_rng_state(saved["rng"])
    if saved["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    torch.use_deterministic_algorithms(saved["deterministic"])


def _default_threads() -> int:
    """torch's own default: OMP_NUM_THREADS when set, else the cores this process may run on."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return available_cores()
