"""A stage leaves the process as it found it: threads, RNG streams, determinism flag, environment.

``llara run`` runs every stage in one process. The recommender stage sets one torch thread and
seeds torch; DeepSpeed's set-up writes RANK, MASTER_PORT and friends into the environment. Without
this scope those settings leak into the stages that follow (the LLM stages then ran on one core).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

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
    flag and the environment variables to what they were before it."""
    import torch  # here, not at the top: a fully cached run never loads torch

    threads = torch.get_num_threads()
    python_rng, numpy_rng, torch_rng = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    deterministic = torch.are_deterministic_algorithms_enabled()
    environment = dict(os.environ)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(python_rng)
        np.random.set_state(numpy_rng)
        torch.random.set_rng_state(torch_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        torch.use_deterministic_algorithms(deterministic)
        for key in set(os.environ) - set(environment):
            del os.environ[key]
        os.environ.update(environment)
