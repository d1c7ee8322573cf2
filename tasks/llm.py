"""The LLM stages as plain functions and Prefect tasks: ``prompts`` and ``finetune``."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from artifacts import Artifact, ArtifactStore
from stages.launch import Resources
from stages.llm.config import FinetuneConfig, PromptsConfig
from tasks.common import open_store, run_stage


def materialize_prompts(
    data: Artifact, config: PromptsConfig, store: ArtifactStore, refresh: bool = False
) -> Artifact:
    artifact, _ = run_stage("prompts", config, {"dataset": data}, store, refresh=refresh)
    return artifact


def finetune(
    prompt_set: Artifact,
    embeddings: Artifact,
    config: FinetuneConfig,
    store: ArtifactStore,
    refresh: bool = False,
    resources: Resources | None = None,
) -> Artifact:
    """Fine-tune (resuming a killed run of the same id from its last checkpoint).

    ``resources`` (several processes or nodes, a device slot) run it in child processes under
    torchrun (``tasks.launched``); the id is that of the one-process run with the same effective batch.
    """
    inputs = {"prompts": prompt_set, "embeddings": embeddings}
    if resources is not None and resources.in_child:
        from tasks.launched import finetune_launched

        return finetune_launched(inputs, config, store, resources, refresh)
    artifact, _ = run_stage("finetune", config, inputs, store, refresh=refresh, resumable=True)
    return artifact


@task(name="prompts", cache_policy=NO_CACHE, task_run_name="prompts {config.backbone}")
def prompts_task(
    data_id: str, config: PromptsConfig, store_root: str | Path | None = None, refresh: bool = False
) -> str:
    store = open_store(store_root)
    return materialize_prompts(store.get(data_id), config, store, refresh).id


@task(
    name="finetune",
    cache_policy=NO_CACHE,
    task_run_name="finetune {config.schedule} seed={config.seed}",
)
def finetune_task(
    prompts_id: str,
    embeddings_id: str,
    config: FinetuneConfig,
    store_root: str | Path | None = None,
    refresh: bool = False,
    resources: Resources | None = None,
) -> str:
    store = open_store(store_root)
    return finetune(store.get(prompts_id), store.get(embeddings_id), config, store, refresh, resources).id
