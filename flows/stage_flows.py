"""One flow per stage after ``prepare`` (which lives in ``flows.prepare``), each named like its
stage (``stages.registry``) and deployed as ``llara-NAME``.

Each finds its inputs by artifact id when given one, else takes the latest valid artifact of the
stage it reads from, so "rerun just the fine-tuning" is one click in the UI. A flow makes its own
stage's artifact (and an input that is missing, like MoRec's text embeddings), never a later one:
``pretrain`` then ``embeddings`` are two runs.
"""

from __future__ import annotations

from dataclasses import replace

from prefect import flow, get_run_logger

from artifacts import ArtifactStore
from flows.choices import EvalMode, Profile, Recommender, Schedule, SRLoss
from flows.common import check_pickle_opt_in, publish_report_to_ui, resolve
from flows.profiles import pipeline_profile
from flows.row_names import evaluation_row
from stages.evaluate.config import EvaluateConfig
from stages.inputs import read_json
from stages.llm.config import FinetuneConfig, PromptsConfig
from stages.report.config import ReportConfig
from stages.seqrec.config import ImportConfig, PretrainConfig, TextEmbeddingsConfig
from stages.settings import apply_settings
from tasks.evaluate import evaluate_task, report_task
from tasks.llm import finetune_task, prompts_task
from tasks.pretrain import embeddings_task, import_sr_task, pretrain_task, text_embeddings_task

# The config class that each stage's ``settings`` (``FIELD=VALUE`` overrides) apply to.
STAGE_CONFIGS = {
    "text-embeddings": TextEmbeddingsConfig,
    "pretrain": PretrainConfig,
    "prompts": PromptsConfig,
    "finetune": FinetuneConfig,
    "evaluate": EvaluateConfig,
}

# The stages whose artifacts the report shows: recommender rows, LLaRA rows, training curves.
REPORTED = ("pretrain", "import-sr", "evaluate", "finetune")


def _domain(store: ArtifactStore, data_id: str) -> str:
    return read_json(store.get(data_id).path / "dataset.json", ("domain",))["domain"]


@flow(name="text-embeddings")
def text_embeddings_flow(
    data: str | None = None,
    settings: list[str] | None = None,
    refresh: bool = False,
    store: str | None = None,
) -> str:
    """MiniLM vectors of a prepared dataset's item titles (MoRec's input); returns the artifact id.

    Args:
        data: Prepared-dataset artifact id. Empty: the latest.
        settings: FIELD=VALUE overrides of TextEmbeddingsConfig (e.g. batch_size=64).
        refresh: Recompute even when a valid cached artifact exists.
        store: Artifact store directory. Empty: the worker's (LLARA_STORE, else .llara/store).
    """
    data_id = resolve(ArtifactStore(store), "prepare", data).id
    config = apply_settings(TextEmbeddingsConfig(), settings or [])
    return text_embeddings_task(data_id, config, store, refresh=refresh)


@flow(name="pretrain")
def pretrain_flow(
    data: str | None = None,
    models: list[Recommender] | None = None,
    seeds: list[int] | None = None,
    loss: SRLoss = "ce",
    profile: Profile = "quick",
    settings: list[str] | None = None,
    refresh: bool = False,
    store: str | None = None,
) -> dict[str, dict[str, str]]:
    """Train recommenders on a prepared dataset; returns {"model/seed": pretrain artifact id}.

    MoRec's text embeddings are computed first (a cache hit when they exist); the item-embedding
    tables are the ``embeddings`` flow's.

    Args:
        data: Prepared-dataset artifact id. Empty: the latest.
        models: Recommenders to train. Empty: all four.
        seeds: Training seeds. Empty: 0.
        loss: ce (full softmax, stronger) or bce1 (one sampled negative, as in the paper).
        profile: smoke, quick, paper, long or cpu (see the reproduce deployment).
        settings: FIELD=VALUE overrides of PretrainConfig (e.g. lr=3e-3).
        refresh: Recompute even when a valid cached artifact exists.
        store: Artifact store directory. Empty: the worker's (LLARA_STORE, else .llara/store).
    """
    artifact_store = ArtifactStore(store)
    data_id = resolve(artifact_store, "prepare", data).id
    plan = pipeline_profile(profile, _domain(artifact_store, data_id))
    out = {}
    chosen = models or ["sasrec", "gru4rec", "caser", "morec"]
    text_id = None
    if "morec" in chosen:
        text_id = text_embeddings_task(data_id, TextEmbeddingsConfig(), store)
    for model in chosen:
        for seed in seeds or [0]:
            config = apply_settings(plan.pretrain_for(model, seed, loss=loss), settings or [])
            out[f"{model}/{seed}"] = pretrain_task(data_id, config, store, refresh=refresh, text_id=text_id)
    return out


@flow(name="import-sr")
def import_sr_flow(
    checkpoint: str,
    data: str | None = None,
    allow_pickle: bool = False,
    seed: int = 0,
    refresh: bool = False,
    store: str | None = None,
) -> str:
    """Score a released LLaRA SASRec checkpoint on a prepared dataset; returns the artifact id.

    Args:
        checkpoint: The checkpoint file (rec_model/*.pt of the LLaRA release) on the worker.
        data: Prepared-dataset artifact id with the checkpoint's items. Empty: the latest.
        allow_pickle: Read the pickled checkpoint (with a restricted unpickler). A deployment run
            honours this only when the server was started with `llara serve --allow-pickle`.
        seed: Seed of the bootstrap CIs.
        refresh: Recompute even when a valid cached artifact exists.
        store: Artifact store directory. Empty: the worker's (LLARA_STORE, else .llara/store).
    """
    check_pickle_opt_in(allow_pickle)
    data_id = resolve(ArtifactStore(store), "prepare", data).id
    config = ImportConfig(file=checkpoint, allow_pickle=allow_pickle, seed=seed)
    return import_sr_task(data_id, config, store, refresh=refresh)


@flow(name="embeddings")
def embeddings_flow(model: str | None = None, refresh: bool = False, store: str | None = None) -> str:
    """The frozen item-embedding table of a recommender, for finetune; returns the artifact id.

    Args:
        model: Pretrain or import-sr artifact id. Empty: the latest pretrain artifact.
        refresh: Recompute even when a valid cached artifact exists.
        store: Artifact store directory. Empty: the worker's (LLARA_STORE, else .llara/store).
    """
    model_id = resolve(ArtifactStore(store), "pretrain", model).id
    return embeddings_task(model_id, store, refresh=refresh)


@flow(name="prompts")
def prompts_flow(
    data: str | None = None,
    profile: Profile = "quick",
    backbone: str | None = None,
    settings: list[str] | None = None,
    refresh: bool = False,
    store: str | None = None,
) -> str:
    """Materialize the hybrid/text prompts of a prepared dataset for a backbone's tokenizer.

    Args:
        data: Prepared-dataset artifact id. Empty: the latest.
        profile: smoke, quick, paper, long or cpu (see the reproduce deployment).
        backbone: smollm2-135m, tiny-random or hf:DIR. Empty: the profile's.
        settings: FIELD=VALUE overrides of PromptsConfig (e.g. max_eval_rows=8).
        refresh: Recompute even when a valid cached artifact exists.
        store: Artifact store directory. Empty: the worker's (LLARA_STORE, else .llara/store).
    """
    artifact_store = ArtifactStore(store)
    data_id = resolve(artifact_store, "prepare", data).id
    plan = pipeline_profile(profile, _domain(artifact_store, data_id), backbone)
    return prompts_task(data_id, apply_settings(plan.prompts, settings or []), store, refresh=refresh)


@flow(name="finetune")
def finetune_flow(
    prompts: str | None = None,
    embeddings: str | None = None,
    schedule: Schedule | None = None,
    seed: int = 0,
    profile: Profile = "quick",
    backbone: str | None = None,
    settings: list[str] | None = None,
    refresh: bool = False,
    store: str | None = None,
    nproc_per_node: int = 1,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str = "127.0.0.1",
    master_port: int = 0,
) -> str:
    """Fine-tune the LLM (LoRA + projector) on a prompts artifact with an item-embedding artifact.

    Args:
        prompts: Prompts artifact id. Empty: the latest.
        embeddings: Item-embedding artifact id. Empty: the latest.
        schedule: curriculum (LLaRA), direct, text (TALLRec), two-stage or llara-official. Empty:
            the profile's (direct for cpu, curriculum for the others).
        seed: Training seed.
        profile: smoke, quick, paper, long or cpu (see the reproduce deployment).
        backbone: smollm2-135m, tiny-random or hf:DIR; must be the prompts'. Empty: the profile's.
        settings: FIELD=VALUE overrides of FinetuneConfig (e.g. max_steps=100).
        refresh: Recompute even when a valid cached artifact exists.
        store: Artifact store directory. Empty: the worker's (LLARA_STORE, else .llara/store).
        nproc_per_node: Processes on this node (torchrun; one per GPU). grad_accum is per process.
        nnodes: Machines in the run; each runs this flow with its own node_rank.
        node_rank: This machine's index; node 0 publishes the artifact.
        master_addr: Host of node 0, reachable from every node.
        master_port: Rendezvous port on node 0 (0: a free one; one node only).
    """
    artifact_store = ArtifactStore(store)
    prompt_set = resolve(artifact_store, "prompts", prompts)
    emb = resolve(artifact_store, "embeddings", embeddings)
    domain = _domain(artifact_store, prompt_set.manifest["inputs"]["dataset"])
    plan = pipeline_profile(profile, domain, backbone)
    config = replace(plan.finetune, schedule=schedule or plan.finetune.schedule, seed=seed)
    config = apply_settings(config, settings or [])
    resources = replace(
        plan.resources,
        nproc_per_node=nproc_per_node,
        nnodes=nnodes,
        node_rank=node_rank,
        master_addr=master_addr,
        master_port=master_port,
    )
    return finetune_task(prompt_set.id, emb.id, config, store, refresh=refresh, resources=resources)


@flow(name="evaluate")
def evaluate_flow(
    prompts: str | None = None,
    model: str | None = None,
    mode: EvalMode = "scoring",
    zero_shot: bool = False,
    profile: Profile = "quick",
    backbone: str | None = None,
    endpoint: str | None = None,
    endpoint_model: str = "",
    settings: list[str] | None = None,
    refresh: bool = False,
    store: str | None = None,
) -> str:
    """Evaluate a fine-tuned model, the backbone zero-shot, or an OpenAI-compatible chat endpoint.

    A fine-tuned model is evaluated on the prompts and embeddings it was trained with unless
    ``prompts`` names others; the stage refuses a pair that does not fit.

    Args:
        prompts: Prompts artifact id. Empty: the model's own prompts (zero-shot: the latest).
        model: Fine-tuned model artifact id. Empty: the latest.
        mode: scoring (candidate likelihood) or generation (greedy answer, the paper's numbers).
        zero_shot: Evaluate the backbone without fine-tuning instead.
        profile: smoke, quick, paper, long or cpu (see the reproduce deployment).
        backbone: smollm2-135m, tiny-random or hf:DIR. Empty: the profile's.
        endpoint: Base URL of an OpenAI-compatible endpoint for a zero-shot row. Empty: off.
        endpoint_model: The model name sent to the endpoint.
        settings: FIELD=VALUE overrides of EvaluateConfig (e.g. template=all).
        refresh: Recompute even when a valid cached artifact exists.
        store: Artifact store directory. Empty: the worker's (LLARA_STORE, else .llara/store).
    """
    artifact_store = ArtifactStore(store)
    trained = None if zero_shot or endpoint else resolve(artifact_store, "finetune", model)
    own_prompts = trained.manifest["inputs"]["prompts"] if trained is not None else None
    prompt_set = resolve(artifact_store, "prompts", prompts or own_prompts)
    plan = pipeline_profile(
        profile, _domain(artifact_store, prompt_set.manifest["inputs"]["dataset"]), backbone
    )
    if trained is None:
        config = replace(
            plan.evaluate,
            mode="generation" if endpoint else mode,
            row="",
            endpoint=endpoint,
            endpoint_model=endpoint_model,
        )
        config = apply_settings(config, settings or [])
        return evaluate_task(prompt_set.id, config, store_root=store, refresh=refresh)
    embeddings = artifact_store.get(trained.manifest["inputs"]["embeddings"])
    row, seed = evaluation_row(trained, embeddings), trained.manifest["config"]["config"]["seed"]
    config = replace(plan.evaluate, mode=mode, row=row, seed=seed)
    config = apply_settings(config, settings or [])
    return evaluate_task(prompt_set.id, config, trained.id, embeddings.id, store, refresh=refresh)


@flow(name="report")
def report_flow(results: list[str] | None = None, refresh: bool = False, store: str | None = None) -> str:
    """Write the report (table, markdown, plots) and show it in the run's Artifacts tab.

    Args:
        results: Evaluate, pretrain, import-sr or finetune artifact ids. Empty: every one in the store.
        refresh: Recompute even when a valid cached artifact exists.
        store: Artifact store directory. Empty: the worker's (LLARA_STORE, else .llara/store).
    """
    log = get_run_logger()
    artifact_store = ArtifactStore(store)
    if results:
        chosen = {artifact_store.get(i).id: artifact_store.get(i) for i in results}
    else:
        chosen = {a.id: a for a in artifact_store if a.stage in REPORTED}
    roles = {f"{a.stage}-{i}": i for i, a in chosen.items()}
    report_id = report_task(roles, ReportConfig(), store, refresh)
    report = artifact_store.get(report_id)
    publish_report_to_ui(report)
    log.info("report: %s", report.path / "report.md")
    return report_id
