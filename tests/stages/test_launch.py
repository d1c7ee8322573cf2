"""``stages.launch``: a stage call in a child process, its result, its CPU slot and its one-line failure."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from types import ModuleType

import pytest

from stages.launch import LaunchError, Resources, launch

JOBS = """
import os

def cores(config, inputs, out_dir):
    print("hello from the child", flush=True)
    return {"cores": sorted(os.sched_getaffinity(0)), "config": config, "out": str(out_dir)}

def boom(config, inputs, out_dir):
    raise ValueError("field 'x' of\\nthe config is bad")
"""


@pytest.fixture
def jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Job functions in a module the child processes can import too (on PYTHONPATH)."""
    (tmp_path / "launch_jobs.py").write_text(JOBS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return importlib.import_module("launch_jobs")


def test_a_child_returns_its_result_on_its_cpus(
    jobs: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = launch(jobs.cores, {"a": 1}, {}, tmp_path, Resources(cpus=(0,)), logging.getLogger("t"))
    assert result == {"cores": [0], "config": {"a": 1}, "out": str(tmp_path)}
    assert "hello from the child" in caplog.text


def test_a_failure_is_one_line_naming_the_rank_and_error(jobs: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(LaunchError) as raised:
        launch(jobs.boom, {}, {}, tmp_path, Resources(env=(("X", "1"),)), logging.getLogger("t"))
    assert str(raised.value) == "rank 0 of 1 failed: ValueError: field 'x' of the config is bad"


def test_resources_refuse_an_inconsistent_set() -> None:
    assert not Resources().in_child and Resources(nproc_per_node=2).world_size == 2
    with pytest.raises(ValueError, match="node_rank"):
        Resources(nnodes=2, node_rank=2, master_port=29500)
    with pytest.raises(ValueError, match="master_port"):
        Resources(nnodes=2)


def test_a_hostfile_names_the_nodes_and_this_machine(tmp_path: Path) -> None:
    import socket

    from stages.launch import from_hostfile

    hostfile = tmp_path / "hosts"
    hostfile.write_text(f"node0.example slots=8  # rank 0\n\n{socket.gethostname()} slots=4\n")
    assert from_hostfile(hostfile, master_port=29400) == Resources(4, 2, 1, "node0.example", 29400)
    hostfile.write_text("localhost slots=2\n")
    assert from_hostfile(hostfile) == Resources(nproc_per_node=2)
    hostfile.write_text("node0.example\nnode1.example\n")
    with pytest.raises(ValueError, match="exactly one line"):
        from_hostfile(hostfile)
    hostfile.write_text("node0.example gpus=8\n")
    with pytest.raises(ValueError, match="line 1"):
        from_hostfile(hostfile)
