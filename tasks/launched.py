"""Stages run in child processes from a task: any stage in a device slot, and the finetune stage on
several processes or nodes.

Node 0 builds the artifact through the store as always (its lock, a temp dir, an atomic rename);
its global rank 0 writes the files. Another node's command joins the same run: it takes no lock
(node 0 holds it for the whole run), trains its ranks with the shared checkpoint directory, then
waits on the lock until node 0 has published, and returns that artifact.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from artifacts import Artifact, ArtifactError, ArtifactStore, artifact_id
from stages.files import locked
from stages.launch import Resources, launch
from stages.llm.config import FinetuneConfig
from tasks.common import identity_of, run_stage, stage_code, stage_logger, stage_run


def in_child(name: str, resources: Resources | None) -> Callable[..., Any] | None:
    """Stage ``name``'s ``run`` as ``run_stage`` calls it, but in a child process on ``resources``; None
    (run it here) when ``resources`` ask for nothing of the kind."""
    if resources is None or not resources.in_child:
        return None
    logger = stage_logger()

    def in_slot(config: Any, inputs: dict[str, Path], out_dir: Path, **kwargs: Any) -> Any:
        return launch(stage_run(name), config, inputs, out_dir, resources, logger, **kwargs)

    return in_slot


def finetune_launched(
    inputs: dict[str, Artifact],
    config: FinetuneConfig,
    store: ArtifactStore,
    resources: Resources,
    refresh: bool = False,
) -> Artifact:
    """Fine-tune ``config`` (per-process ``grad_accum``) on ``resources``; the one-process run's id."""
    from stages.llm.launch import one_process_config, run_launched  # torch: only when it trains

    single = one_process_config(config, resources.world_size)
    logger = stage_logger()
    if resources.node_rank == 0:
        run = partial(run_launched, resources=resources, logger=logger)
        artifact, _ = run_stage("finetune", single, inputs, store, refresh=refresh, resumable=True, run=run)
        return artifact
    aid = artifact_id(
        "finetune",
        {"config": identity_of(single)},
        {r: a.id for r, a in inputs.items()},
        stage_code("finetune"),
    )
    if not refresh and (done := store.lookup(aid)) is not None:  # node 0 has nothing to train either
        return done
    paths = {role: a.path for role, a in inputs.items()}
    with tempfile.TemporaryDirectory(prefix="llara-node-") as out:  # only global rank 0 writes files
        run_launched(single, paths, Path(out), resources, logger, store.scratch(aid), resume=True)
    with locked(store.locks / f"{aid}.lock"):  # node 0 holds it until the artifact is published
        pass
    artifact = store.lookup(aid)
    if artifact is None:
        raise ArtifactError(f"{store.objects / aid}: node 0 did not publish the finetune artifact")
    return artifact
