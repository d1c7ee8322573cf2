"""``--nproc-per-node``, ``--nnodes``, ``--node-rank``, ``--master-addr``, ``--master-port``: where the
fine-tuning runs (``stages.launch.Resources``; never part of an artifact id)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stages.launch import Resources, from_hostfile

NprocOption = Annotated[
    int,
    typer.Option(
        min=1,
        help="Fine-tuning processes on this node (torchrun; one per GPU). grad_accum is per process: "
        "the effective batch is micro_batch * grad_accum * processes.",
    ),
]
NnodesOption = Annotated[int, typer.Option(min=1, help="Machines in the fine-tuning run (each runs this).")]
NodeRankOption = Annotated[int, typer.Option(min=0, help="This machine's index; node 0 publishes.")]
MasterAddrOption = Annotated[str, typer.Option(help="Host of node 0, reachable from every node.")]
MasterPortOption = Annotated[int, typer.Option(help="Rendezvous port on node 0 (0: a free one; one node).")]

HostfileOption = Annotated[
    Path | None,
    typer.Option(
        help="Hostfile (one 'host [slots=N]' per line, node 0 first): sets --nnodes, --node-rank "
        "(this machine's line), --master-addr (the first host) and the processes (slots)."
    ),
]


def resources_of(
    nproc_per_node: int,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str = "127.0.0.1",
    master_port: int = 0,
    hostfile: Path | None = None,
) -> Resources:
    """The options as ``Resources``; an inconsistent set exits 2 with one line."""
    try:
        if hostfile is not None:
            return from_hostfile(hostfile, nproc_per_node, master_port or 29500)
        return Resources(nproc_per_node, nnodes, node_rank, master_addr, master_port)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--hostfile/--nnodes/--node-rank/--master-port") from e
