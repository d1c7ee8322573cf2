"""Independent branches of ``reproduce`` (each recommender; each fine-tune and its evaluations) run
concurrently: Prefect's ``ThreadPoolTaskRunner(max_workers=max_parallel)`` runs the submitted
branch tasks, and each branch holds one device slot while it runs.

A slot is a share of this machine: some GPUs (``CUDA_VISIBLE_DEVICES``) or, on CPU, some cores
(the processes' affinity, so each stage's ``available_cores`` is its thread budget). A branch runs
its stages in child processes on its slot, because torch's thread pool, its RNG streams and the
environment belong to a process, not a thread. At most ``max_parallel`` branches run at once and
there are as many slots, so taking one never waits on another branch.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from artifacts import in_cached_only
from stages.launch import Resources

Branch = Callable[[Resources | None], Any]
"""A branch's steps, given its slot (None: run in this process, as a sequential run does)."""


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    """``items`` in ``parts`` contiguous shares (round robin when there are fewer items than parts)."""
    if len(items) < parts:
        return [[items[i % len(items)]] for i in range(parts)]
    size, extra = divmod(len(items), parts)
    shares, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        shares.append(items[start:end])
        start = end
    return shares


def device_slots(parts: int) -> list[Resources]:
    """This machine's GPUs (else its cores) in ``parts`` slots."""
    import torch

    if torch.cuda.is_available():
        gpus = _split(list(range(torch.cuda.device_count())), parts)
        return [Resources(devices=",".join(map(str, share))) for share in gpus]
    cores = sorted(os.sched_getaffinity(0))  # Linux: the children get their share as affinity
    return [Resources(cpus=tuple(share)) for share in _split(cores, parts)]


class Slots:
    """The device slots of one parallel run; a branch holds one while it runs."""

    def __init__(self, slots: list[Resources]) -> None:
        self._free: queue.Queue[Resources] = queue.Queue()
        for slot in slots:
            self._free.put(slot)

    @contextmanager
    def take(self) -> Iterator[Resources]:
        slot = self._free.get()
        try:
            yield slot
        finally:
            self._free.put(slot)


@task(name="branch", cache_policy=NO_CACHE, task_run_name="{name}")
def branch_task(name: str, steps: Branch, slots: Slots) -> Any:
    """One independent branch on a free device slot (its stages are nested task runs)."""
    with slots.take() as slot:
        return steps(slot)


def run_branches(branches: list[tuple[str, Branch]], max_parallel: int) -> list[Any]:
    """Each branch's result, in order; up to ``max_parallel`` at once (1: one after another, here)."""
    if max_parallel <= 1 or len(branches) <= 1 or in_cached_only():
        return [steps(None) for _, steps in branches]
    slots = Slots(device_slots(max_parallel))
    with ThreadPoolTaskRunner(max_workers=max_parallel) as runner:
        futures = [runner.submit(branch_task, {"name": n, "steps": s, "slots": slots}) for n, s in branches]
        return [future.result() for future in futures]
