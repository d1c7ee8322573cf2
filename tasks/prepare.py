"""The prepare stage as a Prefect task (the plain function, without Prefect: ``tasks.direct``)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from stages.preprocess.config import PrepareConfig
from tasks.common import open_store
from tasks.direct import prepare


@task(name="prepare", cache_policy=NO_CACHE, task_run_name="prepare {config.source}")
def prepare_task(config: PrepareConfig, store_root: str | Path | None = None, refresh: bool = False) -> str:
    """Returns the artifact id; the artifact lies at ``<store>/objects/<id>``."""
    artifact, _ = prepare(config, open_store(store_root), refresh=refresh)
    return artifact.id
