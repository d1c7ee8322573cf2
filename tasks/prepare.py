"""The prepare stage as a plain function and as a Prefect task."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from artifacts import Artifact, ArtifactStore
from stages.preprocess.config import PrepareConfig
from stages.preprocess.prepare import source_fingerprint  # polars only: the id needs the raw files
from tasks.common import open_store, run_stage


def prepare(
    config: PrepareConfig, store: ArtifactStore, refresh: bool = False
) -> tuple[Artifact, bool]:
    """Build (or reuse) the prepared dataset. The id covers the raw files' fingerprint, so editing
    the user's data makes a new artifact."""
    fingerprint = {"source_files": source_fingerprint(config)}
    return run_stage("prepare", config, {}, store, refresh=refresh, key_extra=fingerprint)


@task(name="prepare", cache_policy=NO_CACHE, task_run_name="prepare {config.source}")
def prepare_task(
    config: PrepareConfig, store_root: str | Path | None = None, refresh: bool = False
) -> str:
    """Returns the artifact id; the artifact lies at ``<store>/objects/<id>``."""
    artifact, _ = prepare(config, open_store(store_root), refresh=refresh)
    return artifact.id
