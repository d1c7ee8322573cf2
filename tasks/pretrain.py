"""The recommender stages as plain functions and Prefect tasks: ``text-embeddings`` (MoRec's title
vectors), ``pretrain``, ``import-sr`` (a released checkpoint) and ``embeddings`` (the item table)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from artifacts import Artifact, ArtifactStore
from stages.files import sha256_file
from stages.launch import Resources
from stages.seqrec.config import EmbeddingsConfig, ImportConfig, PretrainConfig, TextEmbeddingsConfig
from tasks.common import open_store, run_stage
from tasks.launched import in_child


def make_text_embeddings(
    data: Artifact,
    config: TextEmbeddingsConfig,
    store: ArtifactStore,
    refresh: bool = False,
    resources: Resources | None = None,
) -> Artifact:
    run = in_child("text-embeddings", resources)
    artifact, _ = run_stage("text-embeddings", config, {"data": data}, store, refresh=refresh, run=run)
    return artifact


def train(
    data: Artifact,
    config: PretrainConfig,
    store: ArtifactStore,
    refresh: bool = False,
    text: Artifact | None = None,
    resources: Resources | None = None,
) -> Artifact:
    """Pretrain one recommender; MoRec reads ``text`` (computed here with the defaults if None).

    ``resources`` (a device slot of a parallel run) run the stage in a child process there."""
    inputs = {"data": data}
    if config.model == "morec":
        default = TextEmbeddingsConfig()
        inputs["text"] = text or make_text_embeddings(data, default, store, resources=resources)
    run = in_child("pretrain", resources)
    artifact, _ = run_stage("pretrain", config, inputs, store, refresh=refresh, run=run)
    return artifact


def import_checkpoint(
    data: Artifact, config: ImportConfig, store: ArtifactStore, refresh: bool = False
) -> Artifact:
    """Import a released checkpoint. The id hashes the checkpoint's bytes, not its path: the same
    file anywhere is one artifact, an edited file another."""
    file = Path(config.file)
    extra = {"checkpoint_sha256": sha256_file(file)} if file.is_file() else {}
    artifact, _ = run_stage("import-sr", config, {"data": data}, store, refresh=refresh, key_extra=extra)
    return artifact


def export_embeddings(
    model: Artifact, store: ArtifactStore, refresh: bool = False, resources: Resources | None = None
) -> Artifact:
    """The item-embedding table of a ``pretrain`` or ``import-sr`` artifact."""
    config = EmbeddingsConfig()
    run = in_child("embeddings", resources)
    artifact, _ = run_stage("embeddings", config, {"model": model}, store, refresh=refresh, run=run)
    return artifact


def train_recommender(
    data: Artifact, config: PretrainConfig, store: ArtifactStore, refresh: bool = False
) -> tuple[Artifact, Artifact]:
    """``pretrain`` then ``embeddings`` on it: (model, embeddings), for ``llara pretrain``."""
    model = train(data, config, store, refresh=refresh)
    return model, export_embeddings(model, store, refresh=refresh)


def import_recommender(
    data: Artifact, config: ImportConfig, store: ArtifactStore, refresh: bool = False
) -> tuple[Artifact, Artifact]:
    """``import-sr`` then ``embeddings`` on it: (model, embeddings), for ``llara import-sr``."""
    model = import_checkpoint(data, config, store, refresh=refresh)
    return model, export_embeddings(model, store, refresh=refresh)


@task(name="text-embeddings", cache_policy=NO_CACHE, retries=0)
def text_embeddings_task(
    data_id: str,
    config: TextEmbeddingsConfig,
    store_root: str | Path | None = None,
    refresh: bool = False,
) -> str:
    store = open_store(store_root)
    return make_text_embeddings(store.get(data_id), config, store, refresh=refresh).id


@task(
    name="pretrain",
    cache_policy=NO_CACHE,
    task_run_name="pretrain {config.model} seed={config.seed}",
    retries=0,
)
def pretrain_task(
    data_id: str,
    config: PretrainConfig,
    store_root: str | Path | None = None,
    refresh: bool = False,
    text_id: str | None = None,
    resources: Resources | None = None,
) -> str:
    """Returns the pretrain artifact id; ``text_id`` is MoRec's text-embeddings artifact."""
    store = open_store(store_root)
    text = store.get(text_id) if text_id else None
    return train(store.get(data_id), config, store, refresh=refresh, text=text, resources=resources).id


@task(name="import-sr", cache_policy=NO_CACHE, task_run_name="import-sr {config.file}", retries=0)
def import_sr_task(
    data_id: str, config: ImportConfig, store_root: str | Path | None = None, refresh: bool = False
) -> str:
    store = open_store(store_root)
    return import_checkpoint(store.get(data_id), config, store, refresh=refresh).id


@task(name="embeddings", cache_policy=NO_CACHE, retries=0)
def embeddings_task(
    model_id: str,
    store_root: str | Path | None = None,
    refresh: bool = False,
    resources: Resources | None = None,
) -> str:
    """Returns the embeddings artifact id of a pretrain or import-sr artifact."""
    store = open_store(store_root)
    return export_embeddings(store.get(model_id), store, refresh=refresh, resources=resources).id
