"""Wall time, CPU time and page faults of one stretch of work in this process.

A step that got slower either did more work in this process (more CPU seconds, more page faults:
memory returned to the system and taken back) or got less of the machine (the same CPU seconds over
more wall seconds: other processes, or a virtual machine's stolen time). ``busy_cores`` tells the two
apart: on an idle 2-core machine a training step keeps both cores busy (about 2.0). A shared
machine can also get slower without taking cores away (a neighbour's cache and memory traffic, a host
clocking down): ``matmul_gflops`` measures the machine itself, the same fixed product every time,
so a run's slow stretch can be put beside the machine's speed at that moment.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

try:
    import resource
except ImportError:  # Windows: no getrusage; faults are not counted there
    resource = None

CLOCK_COLUMNS = ("seconds", "cpu_seconds", "page_faults")


def _faults() -> int:
    if resource is None:
        return 0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt + usage.ru_majflt


@dataclass(frozen=True)
class ProcessClock:
    """Readings at the start of the stretch; ``since()`` gives what passed."""

    wall: float
    cpu: float
    faults: int

    def since(self) -> dict[str, float | int]:
        """``{"seconds", "cpu_seconds", "page_faults"}`` since this reading (all threads of the process)."""
        return {
            "seconds": time.perf_counter() - self.wall,
            "cpu_seconds": time.process_time() - self.cpu,
            "page_faults": _faults() - self.faults,
        }


def process_clock() -> ProcessClock:
    """A reading of this process's clocks now."""
    return ProcessClock(time.perf_counter(), time.process_time(), _faults())


def busy_cores(row: dict) -> float | None:
    """CPU seconds per wall second of a logged step; ``None`` for a row without them (an older log)."""
    cpu, wall = row.get("cpu_seconds"), row.get("seconds")
    return cpu / wall if cpu is not None and wall else None


def matmul_gflops(device: torch.device, dtype: torch.dtype, size: int = 1024, seconds: float = 0.2) -> float:
    """GFLOP/s of repeated ``size``-square products in ``dtype`` on ``device``, for at least ``seconds``.

    Constant operands: no random draw, so the training's random stream is untouched."""
    a = torch.full((size, size), 1.0 / size, device=device, dtype=dtype)
    b = torch.full((size, size), 1.0 / size, device=device, dtype=dtype)
    torch.mm(a, b)  # warm-up: kernel selection, first touch
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start, products = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        torch.mm(a, b)
        products += 1
        if products % 8 == 0:
            sync()
    sync()
    elapsed = time.perf_counter() - start
    return 2 * size**3 * products / elapsed / 1e9


def malloc_in_use(maps: str | None = None) -> str:
    """``tcmalloc``, ``jemalloc`` (preloaded and mapped; ``maps`` is ``/proc/self/maps`` unless
    given) or ``system`` (glibc's on Linux): the allocator this process runs under. A long CPU
    run's speed depends on it."""
    if maps is None:
        proc = Path("/proc/self/maps")
        maps = proc.read_text() if proc.exists() else ""
    preloaded = os.environ.get("LD_PRELOAD", "")
    for name in ("tcmalloc", "jemalloc"):
        if name in preloaded and f"lib{name}" in maps:
            return name
    return "system"
