"""Run a stage's ``run`` in child processes: one plain child, or ``torchrun`` with several ranks.

The pipeline calls a stage in its own process by default. When a run asks for more (several
processes, several nodes, its own device slot), ``launch`` writes the call to a job file, starts
``python -m stages.worker JOB`` (world size 1) or ``python -m torch.distributed.run ... -m
stages.worker JOB`` (more), streams every rank's output to the caller's logger (their log records
and progress through ``stages.progress.relay``) and returns rank 0's result. A failed rank fails
the call with ``LaunchError``, one line naming the rank and its error.

``Resources`` is not part of any artifact id: where a stage's result depends on the world size
(the finetune stage's effective batch) the stage's own launcher folds it into the config.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stages
from stages.progress import relay

ERROR_FILE = "rank{rank}.error"
RESULT_FILE = "result.json"


class LaunchError(RuntimeError):
    """A launched stage failed: the first line names the failed rank and its error."""


@dataclass(frozen=True)
class Resources:
    """Where and on how many processes a stage runs (never part of an artifact id)."""

    nproc_per_node: int = 1
    """Processes on this node (one per GPU; on CPU they share this node's cores)."""
    nnodes: int = 1
    """Nodes (machines) in the run; each runs the same command with its own ``node_rank``."""
    node_rank: int = 0
    """This node's index; node 0 holds global rank 0, which publishes the artifact."""
    master_addr: str = "127.0.0.1"
    """Host of node 0, reachable from every node (the static rendezvous endpoint)."""
    master_port: int = 0
    """Port of the rendezvous on node 0; 0: a free port (one node only)."""
    cpus: tuple[int, ...] = ()
    """CPU cores the processes may use (their affinity); empty: this process's."""
    devices: str | None = None
    """``CUDA_VISIBLE_DEVICES`` for the processes (a device slot); None: inherited."""
    env: tuple[tuple[str, str], ...] = ()
    """Extra environment variables for the processes, as (name, value) pairs (hashable)."""

    def __post_init__(self) -> None:
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise ValueError(f"nproc_per_node, nnodes must be >= 1: got {self.nproc_per_node}, {self.nnodes}")
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(f"node_rank must be in [0, {self.nnodes}), got {self.node_rank}")
        if self.nnodes > 1 and self.master_port == 0:
            raise ValueError("several nodes need an agreed master_port (and master_addr of node 0)")

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    @property
    def in_child(self) -> bool:
        """Whether the stage must run in child processes rather than in the caller's."""
        return self.world_size > 1 or bool(self.cpus) or self.devices is not None or bool(self.env)


def from_hostfile(path: Path, nproc_per_node: int = 0, master_port: int = 29500) -> Resources:
    """Resources from a DeepSpeed-style hostfile: one ``host [slots=N]`` per line, node 0 first.

    This machine is the line naming its hostname (short or fully qualified); ``slots`` (else
    ``nproc_per_node``) is its processes. Raises ``ValueError`` naming the file and what is wrong.
    """
    hosts: list[tuple[str, int | None]] = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split("#")[0].split()
        if not fields:
            continue
        slots = None
        for extra in fields[1:]:
            key, _, value = extra.partition("=")
            if key != "slots" or not value.isdigit() or int(value) < 1:
                raise ValueError(f"{path}: line {number}: expected 'host [slots=N]', got {line.strip()!r}")
            slots = int(value)
        hosts.append((fields[0], slots))
    if not hosts:
        raise ValueError(f"{path}: no hosts")
    names = {socket.gethostname(), socket.getfqdn(), socket.gethostname().split(".")[0]}
    mine = [i for i, (host, _) in enumerate(hosts) if host in names]
    if len(hosts) == 1 and hosts[0][0] in ("localhost", "127.0.0.1"):
        mine = [0]
    if len(mine) != 1:
        raise ValueError(f"{path}: this machine ({socket.gethostname()}) must be named on exactly one line")
    slots = hosts[mine[0]][1] or nproc_per_node or 1
    if len(hosts) == 1:
        return Resources(slots)
    return Resources(slots, len(hosts), mine[0], hosts[0][0], master_port)


@dataclass(frozen=True)
class Job:
    """One call ``run(config, inputs, out_dir, **kwargs)``, as the worker processes make it."""

    run: Callable[..., Any]
    config: Any
    inputs: dict[str, Path]
    out_dir: Path
    kwargs: dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(resources: Resources, job_file: Path, log_dir: Path) -> list[str]:
    worker = ["-m", "stages.worker", str(job_file)]
    if resources.world_size == 1:
        return [sys.executable, *worker]
    port = resources.master_port or free_port()
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={resources.nnodes}",
        f"--nproc-per-node={resources.nproc_per_node}",
        f"--node-rank={resources.node_rank}",
        f"--master-addr={resources.master_addr}",
        f"--master-port={port}",
        "--max-restarts=0",
        f"--log-dir={log_dir}",
        "--tee=3",  # every rank's stdout+stderr to our pipe, prefixed [default<local rank>]:
        *worker,
    ]


def _environment(resources: Resources) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # the caller's own (leaked) process-group settings are not the children's
    root = str(Path(stages.__file__).resolve().parents[1])  # the children import this very code
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # a pipe, not a terminal: progress comes as log lines
    if resources.cpus:
        env["LLARA_CPUS"] = ",".join(str(c) for c in resources.cpus)
    if resources.devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = resources.devices
    env.update(dict(resources.env))
    return env


def _root_cause(lines: list[str]) -> tuple[int, str] | None:
    """(rank, exit code text) of torchrun's "Root Cause (first observed failure)" report, if any."""
    text = "\n".join(lines)
    found = re.search(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*([^\n]*)", text, re.S)
    if found is None:
        return None
    code = re.sub(r"\(pid: \d+\)\s*", "", found.group(2)).strip()
    return int(found.group(1)), code


def _failure(report_dir: Path, resources: Resources, returncode: int, logs: str, lines: list[str]) -> str:
    """One line: the rank that failed first (torchrun's root cause) and its error or exit code."""
    world, first = resources.world_size, resources.node_rank * resources.nproc_per_node
    here = range(first, first + resources.nproc_per_node)  # this node's ranks report here
    errors = {}
    for rank in here:
        path = report_dir / ERROR_FILE.format(rank=rank)
        if path.is_file():
            errors[rank] = path.read_text().strip()
    cause = _root_cause(lines)
    if cause is not None:
        rank, code = cause
        if rank in errors:
            return f"rank {rank} of {world} failed: {errors[rank]}{logs}"
        return f"rank {rank} of {world} died without an error, exit code {code}{logs}"
    own = {r: e for r, e in errors.items() if not e.endswith("terminated by the launcher")}
    if own:
        rank = min(own)
        return f"rank {rank} of {world} failed: {own[rank]}{logs}"
    return f"launcher exit status {returncode}{logs}"


def launch(
    job: Callable[..., Any],
    config: Any,
    inputs: dict[str, Path],
    out_dir: Path,
    resources: Resources,
    logger: logging.Logger | logging.LoggerAdapter,
    log_dir: Path | None = None,
    **kwargs: Any,
) -> Any:
    """``job(config, inputs, out_dir, **kwargs)`` on ``resources``; returns rank 0's (JSON) result.

    ``job`` must be importable by name (a module-level function). Every line the processes print
    goes to ``logger``; ``log_dir`` also keeps torchrun's per-rank log files (default: a temp dir).
    """
    with tempfile.TemporaryDirectory(prefix="llara-launch-") as private:
        report_dir = Path(private)
        log_dir = Path(log_dir) if log_dir is not None else report_dir / "logs"
        job_file = report_dir / "job.pkl"  # ranks write their result / error next to it
        # Written by this process for its own children in a private (0700) directory: pickle
        # carries the config dataclass and the stage function by reference, never foreign data.
        paths = {k: Path(v) for k, v in inputs.items()}
        job_file.write_bytes(pickle.dumps(Job(job, config, paths, Path(out_dir), kwargs)))
        command = _command(resources, job_file, log_dir)
        logger.info(
            "launching %d process(es) on node %d: %s",
            resources.nproc_per_node,
            resources.node_rank,
            " ".join(command[1:]),
        )
        proc = subprocess.Popen(
            command,
            env=_environment(resources),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # stopping the caller stops the launcher and all its ranks
        )
        tail: deque[str] = deque(maxlen=200)  # torchrun's failure report comes last
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.append(line.rstrip())
                relay(tail[-1], logger, resources.world_size)  # the children's events and log lines
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
        logs = "" if log_dir.is_relative_to(report_dir) else f" (logs: {log_dir})"
        if returncode != 0:
            raise LaunchError(_failure(report_dir, resources, returncode, logs, list(tail)))
        result = report_dir / RESULT_FILE
        if resources.node_rank == 0 and not result.is_file():
            raise LaunchError(f"rank 0 exited without a result{logs}")
        return json.loads(result.read_text()) if result.is_file() else None
