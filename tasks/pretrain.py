"""Stage 1 tasks: text embeddings (MoRec), recommender pretraining or import, and embedding export."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from artifacts import Artifact, ArtifactStore
from stages.files import sha256_file
from stages.launch import Resources
from stages.seqrec import export, import_sr, pretrain, text_embeddings
from tasks.common import open_store, run_stage


def train_recommender(
    data: Artifact,
    config: pretrain.PretrainConfig,
    store: ArtifactStore,
    refresh: bool = False,
    text_config: text_embeddings.TextEmbeddingsConfig | None = None,
    resources: Resources | None = None,
) -> tuple[Artifact, Artifact]:
    """Pretrain one recommender and export its frozen item embeddings: (model, embeddings).

    ``resources`` (a device slot of a parallel run) run each stage in a child process there."""
    from tasks.launched import in_child

    inputs = {"data": data}
    if config.model == "morec":
        text, _ = run_stage(
            text_embeddings,
            text_config or text_embeddings.TextEmbeddingsConfig(),
            {"data": data},
            store,
            run=in_child(text_embeddings.run, resources),
        )
        inputs["text"] = text
    model, _ = run_stage(
        pretrain, config, inputs, store, refresh=refresh, run=in_child(pretrain.run, resources)
    )
    embeddings, _ = run_stage(
        export,
        export.ExportConfig(),
        {"model": model},
        store,
        refresh=refresh,
        run=in_child(export.run, resources),
    )
    return model, embeddings


def import_recommender(
    data: Artifact, config: import_sr.ImportConfig, store: ArtifactStore, refresh: bool = False
) -> tuple[Artifact, Artifact]:
    """Import a released checkpoint and export its item embeddings: (model, embeddings).

    The id hashes the checkpoint's bytes, not its path: the same file anywhere is one artifact, an
    edited file another."""
    file = Path(config.file)
    extra = {"checkpoint_sha256": sha256_file(file)} if file.is_file() else {}
    model, _ = run_stage(import_sr, config, {"data": data}, store, refresh=refresh, key_extra=extra)
    embeddings, _ = run_stage(export, export.ExportConfig(), {"model": model}, store, refresh=refresh)
    return model, embeddings


@task(name="import-sr", cache_policy=NO_CACHE, task_run_name="import-sr {config.file}", retries=0)
def import_sr_task(
    data_id: str, config: import_sr.ImportConfig, store_root: str | Path | None = None, refresh: bool = False
) -> dict[str, str]:
    """Returns {"model": import-sr artifact id, "embeddings": export artifact id}."""
    store = open_store(store_root)
    model, embeddings = import_recommender(store.get(data_id), config, store, refresh=refresh)
    return {"model": model.id, "embeddings": embeddings.id}


@task(
    name="pretrain-sr",
    cache_policy=NO_CACHE,
    task_run_name="pretrain {config.model} seed={config.seed}",
    retries=0,
)
def pretrain_task(
    data_id: str,
    config: pretrain.PretrainConfig,
    store_root: str | Path | None = None,
    refresh: bool = False,
    resources: Resources | None = None,
) -> dict[str, str]:
    """Returns {"model": pretrain artifact id, "embeddings": export artifact id}."""
    store = open_store(store_root)
    model, embeddings = train_recommender(
        store.get(data_id), config, store, refresh=refresh, resources=resources
    )
    return {"model": model.id, "embeddings": embeddings.id}
