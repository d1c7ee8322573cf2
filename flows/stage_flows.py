"""One flow per stage after ``prepare`` (which lives in ``flows.prepare``).

Each finds its inputs by artifact id when given one, else takes the latest valid artifact of the
stage it reads from, so "rerun just the fine-tuning" is one click in the UI.
"""

from __future__ import annotations

import json
from dataclasses import replace

from prefect import flow, get_run_logger

from artifacts import ArtifactStore
from flows.common import publish_report_to_ui, resolve
from flows.profiles import pipeline_profile
from stages.evaluate import EvaluateConfig
from stages.llm.prompts import PromptsConfig
from stages.llm.trainer import FinetuneConfig
from stages.report import ReportConfig
from stages.report.stage import llara_row
from stages.seqrec.pretrain import PretrainConfig
from stages.settings import apply_settings
from tasks.evaluate import evaluate_task, report_task
from tasks.llm import finetune_task, prompts_task
from tasks.pretrain import pretrain_task

# The config class that each stage's ``settings`` (``FIELD=VALUE`` overrides) apply to.
STAGE_CONFIGS = {
    "pretrain-sr": PretrainConfig,
    "materialize-prompts": PromptsConfig,
    "finetune": FinetuneConfig,
    "evaluate": EvaluateConfig,
}


def _domain(store: ArtifactStore, data_id: str) -> str:
    return json.loads((store.get(data_id).path / "dataset.json").read_text())["domain"]


@flow(name="pretrain-sr")
def pretrain_sr_flow(
    data: str | None = None,
    models: list[str] | None = None,
    seeds: list[int] | None = None,
    loss: str = "ce",
    profile: str = "quick",
    settings: list[str] | None = None,
    refresh: bool = False,
    store: str | None = None,
) -> dict[str, dict[str, str]]:
    """Train recommenders (default: sasrec, gru4rec, caser, morec) on a prepared dataset.

    data: prepared-dataset artifact id (default: the latest). settings: ``FIELD=VALUE`` overrides of
    PretrainConfig. Returns {"model/seed": {model, embeddings}}.
    """
    artifact_store = ArtifactStore(store)
    data_id = resolve(artifact_store, "prepare", data).id
    plan = pipeline_profile(profile, _domain(artifact_store, data_id))
    out = {}
    for model in models or ["sasrec", "gru4rec", "caser", "morec"]:
        for seed in seeds or [0]:
            config = apply_settings(plan.pretrain_for(model, seed, loss=loss), settings or [])
            out[f"{model}/{seed}"] = pretrain_task(data_id, config, store, refresh=refresh)
    return out


@flow(name="materialize-prompts")
def prompts_flow(
    data: str | None = None,
    profile: str = "quick",
    backbone: str | None = None,
    settings: list[str] | None = None,
    refresh: bool = False,
    store: str | None = None,
) -> str:
    """Materialize the hybrid/text prompts of a prepared dataset for a backbone's tokenizer.

    settings: ``FIELD=VALUE`` overrides of PromptsConfig."""
    artifact_store = ArtifactStore(store)
    data_id = resolve(artifact_store, "prepare", data).id
    plan = pipeline_profile(profile, _domain(artifact_store, data_id), backbone)
    return prompts_task(data_id, apply_settings(plan.prompts, settings or []), store, refresh=refresh)


@flow(name="finetune")
def finetune_flow(
    prompts: str | None = None,
    embeddings: str | None = None,
    schedule: str = "curriculum",
    seed: int = 0,
    profile: str = "quick",
    backbone: str | None = None,
    settings: list[str] | None = None,
    refresh: bool = False,
    store: str | None = None,
) -> str:
    """Fine-tune the LLM on a prompts artifact with an item-embedding artifact (defaults: the latest).

    settings: ``FIELD=VALUE`` overrides of FinetuneConfig (e.g. ``max_steps=100``)."""
    artifact_store = ArtifactStore(store)
    prompt_set = resolve(artifact_store, "prompts", prompts)
    emb = resolve(artifact_store, "export-embeddings", embeddings)
    domain = _domain(artifact_store, prompt_set.manifest["inputs"]["dataset"])
    plan = pipeline_profile(profile, domain, backbone)
    config = apply_settings(replace(plan.finetune, schedule=schedule, seed=seed), settings or [])
    return finetune_task(prompt_set.id, emb.id, config, store, refresh=refresh)


@flow(name="evaluate")
def evaluate_flow(
    prompts: str | None = None,
    model: str | None = None,
    mode: str = "scoring",
    zero_shot: bool = False,
    profile: str = "quick",
    backbone: str | None = None,
    endpoint: str | None = None,
    endpoint_model: str = "",
    settings: list[str] | None = None,
    refresh: bool = False,
    store: str | None = None,
) -> str:
    """Evaluate a fine-tuned model (default: the latest), the backbone zero-shot, or an
    OpenAI-compatible chat endpoint (``endpoint``: base URL, off by default).

    A fine-tuned model is evaluated on the prompts and embeddings it was trained with unless
    ``prompts`` names others (the stage refuses a pair that does not fit). settings: ``FIELD=VALUE``
    overrides of EvaluateConfig (e.g. ``template=all``)."""
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
    ft = trained.manifest["config"]["config"]
    pretrained = artifact_store.get(trained.manifest["inputs"]["embeddings"]).manifest["inputs"]["model"]
    sr_model = artifact_store.get(pretrained).manifest["config"]["config"]["model"]
    config = replace(plan.evaluate, mode=mode, row=llara_row(sr_model, ft["schedule"]), seed=ft["seed"])
    config = apply_settings(config, settings or [])
    return evaluate_task(
        prompt_set.id, config, trained.id, trained.manifest["inputs"]["embeddings"], store, refresh=refresh
    )


@flow(name="report")
def report_flow(results: list[str] | None = None, refresh: bool = False, store: str | None = None) -> str:
    """Report on the given evaluate/pretrain/finetune artifact ids (default: every one in the store)."""
    log = get_run_logger()
    artifact_store = ArtifactStore(store)
    if results:
        chosen = {artifact_store.get(i).id: artifact_store.get(i) for i in results}
    else:
        chosen = {a.id: a for a in artifact_store if a.stage in ("evaluate", "pretrain", "finetune")}
    report_id = report_task({f"{a.stage}-{i}": i for i, a in chosen.items()}, ReportConfig(), store, refresh)
    report = artifact_store.get(report_id)
    publish_report_to_ui(report)
    log.info("report: %s", report.path / "report.md")
    return report_id
