"""The clocks of a stretch of work: wall, CPU and page faults tell busy from waiting."""

from __future__ import annotations

import mmap
import time

import numpy as np
import torch

from stages.llm.process_clock import busy_cores, matmul_gflops, process_clock


def test_waiting_costs_wall_time_and_no_cpu() -> None:
    clock = process_clock()
    time.sleep(0.2)
    spent = clock.since()
    assert spent["seconds"] >= 0.2 and spent["cpu_seconds"] < 0.05
    assert busy_cores(spent) < 0.25


def test_work_costs_cpu_and_fresh_memory_costs_page_faults() -> None:
    clock = process_clock()
    # 64 MiB the kernel has never handed out: 16k fresh 4 KiB pages, or 32 huge ones. Not np.ones:
    # malloc may serve it from memory this process already touched (glibc did, in a full suite).
    fresh = mmap.mmap(-1, 64 * 2**20)
    block = np.frombuffer(fresh, dtype=np.float64)
    block[:] = 1.0
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        block += 1.0
    spent = clock.since()
    assert spent["cpu_seconds"] >= 0.1 and spent["page_faults"] >= 16
    assert busy_cores(spent) > 0.5


def test_an_older_log_row_has_no_busy_cores() -> None:
    assert busy_cores({"seconds": 1.0}) is None


def test_the_machine_probe_measures_and_leaves_the_random_stream_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    gflops = matmul_gflops(torch.device("cpu"), torch.float32, size=128, seconds=0.05)
    assert gflops > 0.1  # 128-square fp32 products: any CPU does more than 0.1 GFLOP/s
    assert torch.equal(torch.rand(3), expected)
