"""Evaluation and report tasks."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from artifacts import Artifact, ArtifactStore
from stages.evaluate.config import EvaluateConfig
from stages.launch import Resources
from stages.report.config import ReportConfig
from tasks.common import open_store, run_stage, stage_logger


def evaluate(
    prompt_set: Artifact,
    config: EvaluateConfig,
    store: ArtifactStore,
    model: Artifact | None = None,
    embeddings: Artifact | None = None,
    refresh: bool = False,
    resources: Resources | None = None,
) -> Artifact:
    """Evaluate a fine-tuned model, or the backbone zero-shot when ``model`` is None.

    ``resources``: the rows sharded over child processes (``stages.evaluate.shard``); same artifact.
    """
    inputs = {"prompts": prompt_set}
    if model is not None:
        inputs["model"] = model
    if embeddings is not None:
        inputs["embeddings"] = embeddings
    run = None
    if resources is not None and resources.in_child:
        from stages.evaluate.shard import run_sharded

        run = partial(run_sharded, resources=resources, logger=stage_logger())
    artifact, _ = run_stage("evaluate", config, inputs, store, refresh=refresh, run=run)
    return artifact


def report(
    results: dict[str, Artifact],
    config: ReportConfig,
    store: ArtifactStore,
    refresh: bool = False,
) -> Artifact:
    """``results`` maps a role name to an evaluate, pretrain or finetune artifact."""
    artifact, _ = run_stage("report", config, results, store, refresh=refresh)
    return artifact


@task(name="evaluate", cache_policy=NO_CACHE, task_run_name="evaluate {config.row} {config.mode}")
def evaluate_task(
    prompts_id: str,
    config: EvaluateConfig,
    model_id: str | None = None,
    embeddings_id: str | None = None,
    store_root: str | Path | None = None,
    refresh: bool = False,
    resources: Resources | None = None,
) -> str:
    store = open_store(store_root)
    model = store.get(model_id) if model_id else None
    embeddings = store.get(embeddings_id) if embeddings_id else None
    return evaluate(store.get(prompts_id), config, store, model, embeddings, refresh, resources).id


@task(name="report", cache_policy=NO_CACHE)
def report_task(
    result_ids: dict[str, str],
    config: ReportConfig,
    store_root: str | Path | None = None,
    refresh: bool = False,
) -> str:
    store = open_store(store_root)
    return report({role: store.get(i) for role, i in result_ids.items()}, config, store, refresh).id
