"""Flow ``reproduce``: the whole DAG,
prepare -> (text-embeddings) -> pretrain -> embeddings -> prompts -> finetune -> evaluate -> report.

Every step goes through the artifact store, so a rerun on unchanged inputs is a chain of cache
hits, and ``refresh=["finetune"]`` recomputes just that stage (and whatever then changes below it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal

from prefect import Task, flow

from artifacts import ArtifactStore, NotCached, cached_only, in_cached_only
from flows.choices import Profile, Recommender, Schedule, StageName
from flows.common import check_pickle_opt_in, check_refresh, publish_report_to_ui
from flows.parallel import run_branches
from flows.profiles import pipeline_profile
from stages.evaluate.config import EvaluateConfig
from stages.inputs import read_json
from stages.launch import Resources
from stages.llm.config import FinetuneConfig
from stages.preprocess.config import PrepareConfig
from stages.report.config import SR_ROW_NAMES, ReportConfig, llara_row, method_variants
from stages.seqrec.config import IMPORTED_MODEL, ImportConfig, PretrainConfig, TextEmbeddingsConfig
from tasks.common import stage_logger
from tasks.evaluate import evaluate_task, report_task
from tasks.llm import finetune_task, prompts_task
from tasks.prepare import prepare_task
from tasks.pretrain import embeddings_task, import_sr_task, pretrain_task, text_embeddings_task


@flow(name="reproduce")
def reproduce_flow(
    source: str = "bundled:movielens-100k",
    allow_pickle: bool = False,
    profile: Profile = "quick",
    backbone: str | None = None,
    sr_baselines: list[Recommender] | None = None,
    llara_sr_models: list[Recommender] | None = None,
    schedules: list[Schedule] | None = None,
    seeds: list[int] | None = None,
    sr_checkpoints: dict[str, str] | None = None,
    zero_shot: bool = True,
    refresh: list[StageName] | None = None,
    store: str | None = None,
    max_parallel: int = 1,
    nproc_per_node: int | None = None,
    precision: Literal["auto", "bf16", "fp32"] = "auto",
    max_steps: int | None = None,
) -> dict:
    """Run the full pipeline; returns the ids of every artifact and the report's path.

    Args:
        source: Data source, as for `llara prepare`: bundled:movielens-100k, ml100k:DIR,
            recbole:DIR, hetrec-lastfm:DIR, steam:FILE or llara-release:DIR.
        allow_pickle: Unpickle llara-release files. Unpickling runs code, so a run started from the
            UI honours this only when the server was started with `llara serve --allow-pickle`.
        profile: smoke (tiny LLM, about a minute), quick (SmolLM2-135M on CPU, about 10 min),
            paper (the public hyperparameters, for a GPU) or long (the paper's recipe on a CPU for
            a step budget, hours).
        backbone: LLM instead of the profile's: smollm2-135m, tiny-random or hf:DIR. Empty: the
            profile's.
        sr_baselines: Recommenders reported as baseline rows. Empty: all four.
        llara_sr_models: Recommenders whose item embeddings feed a LLaRA row. Empty: sasrec.
        schedules: Fine-tuning schedules; the first makes every LLaRA(SR) row, the others are
            ablation rows on the first recommender (text is TALLRec). Empty: the profile's
            (direct for cpu, curriculum for the others).
        seeds: Training seeds of the recommenders and of the fine-tuning. Empty: 0.
        sr_checkpoints: Recommender -> a released LLaRA checkpoint file (only sasrec; needs
            allow_pickle). Adds the rows "SASRec (released)" and "LLaRA(SASRec, released)" on its
            embeddings (the same table for every seed).
        zero_shot: Also evaluate the backbone without fine-tuning.
        refresh: Stages to recompute even when a valid cached artifact exists.
        store: Artifact store directory. Empty: the worker's (LLARA_STORE, else .llara/store).
        max_parallel: Independent branches (each recommender; each fine-tune with its evaluations)
            run at once, each on its share of the GPUs or CPU cores. The artifacts are those of 1.
        nproc_per_node: Processes per fine-tuning (torchrun; grad_accum is per process, so the
            effective batch grows with it). Empty: the profile's.
        precision: The LLM stages' precision (fine-tuning, validation, evaluation, zero-shot):
            auto is bf16 mixed precision on a GPU or a CPU with bf16 matrix units, else fp32.
        max_steps: Optimizer steps T of every fine-tune: the curriculum and the learning-rate
            schedule end there (the long profile's budget). Empty: the profile's.
    """
    log = stage_logger()
    if max_parallel < 1:
        raise ValueError(f"max_parallel must be >= 1, got {max_parallel}")
    check_pickle_opt_in(allow_pickle)
    forced = check_refresh(refresh)
    sr_baselines = list(sr_baselines if sr_baselines is not None else ["gru4rec", "caser", "sasrec", "morec"])
    llara_sr_models = list(llara_sr_models if llara_sr_models is not None else ["sasrec"])
    seeds = list(seeds if seeds is not None else [0])
    artifact_store = ArtifactStore(store)
    checkpoints = dict(sr_checkpoints or {})
    if set(checkpoints) - {"sasrec"}:
        raise ValueError(f"sr_checkpoints: only sasrec checkpoints are released, got {sorted(checkpoints)}")

    data_id = _call(
        prepare_task,
        PrepareConfig(source=source, allow_pickle=allow_pickle),
        store,
        refresh="prepare" in forced,
    )
    dataset = read_json(artifact_store.get(data_id).path / "dataset.json", ("name", "domain", "n_items"))
    plan = pipeline_profile(profile, dataset["domain"], backbone, max_steps)
    plan = replace(
        plan,
        finetune=replace(plan.finetune, precision=precision),
        evaluate=replace(plan.evaluate, precision=precision),
    )
    schedules = list(schedules or [plan.finetune.schedule])
    log.info(
        "dataset %s (%s, %d items); profile %s; backbone %s",
        dataset["name"],
        dataset["domain"],
        dataset["n_items"],
        plan.name,
        plan.finetune.backbone,
    )

    results: dict[str, str] = {}
    embeddings: dict[tuple[str, int], str] = {}
    sr_models = list(dict.fromkeys(sr_baselines + llara_sr_models))
    text_id = None
    if "morec" in sr_models:
        text_config = TextEmbeddingsConfig()
        text_id = _call(
            text_embeddings_task, data_id, text_config, store, refresh="text-embeddings" in forced
        )
    pairs = [(model, seed) for model in sr_models for seed in seeds]
    pretrain_branches = [
        (
            f"pretrain {model} seed={seed}",
            partial(
                _pretrain,
                data_id,
                plan.pretrain_for(model, seed),
                store,
                ("pretrain" in forced, "embeddings" in forced),
                text_id,
            ),
        )
        for model, seed in pairs
    ]
    for (model, seed), ids in zip(pairs, run_branches(pretrain_branches, max_parallel), strict=True):
        embeddings[(model, seed)] = ids["embeddings"]
        if model in sr_baselines:
            results[f"{SR_ROW_NAMES[model]} seed={seed}"] = ids["model"]

    if "sasrec" in checkpoints:
        config = ImportConfig(file=checkpoints["sasrec"], allow_pickle=allow_pickle)
        imported_id = _call(import_sr_task, data_id, config, store, refresh="import-sr" in forced)
        results[SR_ROW_NAMES[IMPORTED_MODEL]] = imported_id
        imported_emb = _call(embeddings_task, imported_id, store, refresh="embeddings" in forced)
        embeddings.update({(IMPORTED_MODEL, seed): imported_emb for seed in seeds})
        llara_sr_models.append(IMPORTED_MODEL)

    prompts_id = _call(prompts_task, data_id, plan.prompts, store, refresh="prompts" in forced)
    evaluate_refresh = "evaluate" in forced
    if zero_shot:
        for mode in plan.eval_modes:
            config = replace(plan.evaluate, mode=mode, row="zero-shot")
            results[f"zero-shot {mode}"] = _call(
                evaluate_task, prompts_id, config, store_root=store, refresh=evaluate_refresh
            )
        if plan.zero_shot_val:
            config = replace(plan.evaluate, mode="scoring", row="zero-shot", split="val")
            results["zero-shot scoring val"] = _call(
                evaluate_task, prompts_id, config, store_root=store, refresh=evaluate_refresh
            )

    # The first schedule makes the LLaRA(SR) row of every recommender; the others are ablations
    # (and ``text`` the TALLRec row) on the first recommender only, as in the paper.
    runs = [(sr, schedules[0]) for sr in llara_sr_models]
    runs += [(llara_sr_models[0], s) for s in dict.fromkeys(schedules[1:]) if s != schedules[0]]
    nproc = nproc_per_node or plan.resources.nproc_per_node
    finetune_resources = replace(plan.resources, nproc_per_node=nproc)
    branches = []
    for sr_model, schedule in runs:
        row = llara_row(
            sr_model, schedule, method_variants(plan.prompts.item_order, plan.finetune.user_token)
        )
        for seed in seeds:
            branch = _LlaraBranch(
                prompts_id,
                embeddings[(sr_model, seed)],
                replace(plan.finetune, schedule=schedule, seed=seed),
                [replace(plan.evaluate, mode=mode, row=row, seed=seed) for mode in plan.eval_modes],
                store,
                "finetune" in forced,
                evaluate_refresh,
                finetune_resources,
            )
            branches.append((f"{row} seed={seed}", branch))
    for (name, _), ids in zip(branches, run_branches(branches, max_parallel), strict=True):
        results[f"{name} train"] = ids["model"]
        for mode, eval_id in zip(plan.eval_modes, ids["evaluations"], strict=True):
            results[f"{name} {mode}"] = eval_id

    report_config = ReportConfig(dataset=dataset["name"], backbone=plan.finetune.backbone)
    report_id = _call(report_task, results, report_config, store, refresh="report" in forced)
    report = artifact_store.get(report_id)
    if not in_cached_only():
        publish_report_to_ui(report)
    log.info("report: %s", report.path / "report.md")
    return {
        "data": data_id,
        "prompts": prompts_id,
        "results": results,
        "report": report_id,
        "report_path": str(report.path / "report.md"),
    }


def _call(task: Task, *args: Any, **kwargs: Any) -> Any:
    """A task of the flow: a Prefect task run, or its plain function under ``cached_only``."""
    return task.fn(*args, **kwargs) if in_cached_only() else task(*args, **kwargs)


def reproduce_cached(**parameters: Any) -> dict | None:
    """``reproduce_flow``'s result when every artifact it needs is in the store, else None.

    The flow's own code runs outside Prefect with the store in ``cached_only`` mode: the first
    stage that would have to compute ends it (``NotCached``), so nothing is written and the same
    DAG decides what "fully cached" means. A run that needs no stage then takes no Prefect server.
    """
    if parameters.get("refresh"):
        return None
    try:
        with cached_only():
            return reproduce_flow.fn(**parameters)
    except NotCached:
        return None


def _pretrain(
    data_id: str,
    config: PretrainConfig,
    store: str | None,
    refresh: tuple[bool, bool],
    text_id: str | None,
    slot: Resources | None,
) -> dict[str, str]:
    """One recommender's ``pretrain`` and ``embeddings`` stages, on a device slot (None: here)."""
    model_id = _call(
        pretrain_task, data_id, config, store, refresh=refresh[0], text_id=text_id, resources=slot
    )
    embeddings_id = _call(embeddings_task, model_id, store, refresh=refresh[1], resources=slot)
    return {"model": model_id, "embeddings": embeddings_id}


@dataclass(frozen=True)
class _LlaraBranch:
    """One LLaRA row's fine-tune and its evaluations, on a device slot (None: in this process)."""

    prompts_id: str
    embeddings_id: str
    finetune: FinetuneConfig
    evaluations: list[EvaluateConfig]
    store: str | None
    refresh_finetune: bool
    refresh_evaluate: bool
    resources: Resources

    def __call__(self, slot: Resources | None) -> dict:
        ft = self.resources if slot is None else replace(slot, nproc_per_node=self.resources.nproc_per_node)
        model_id = _call(
            finetune_task,
            self.prompts_id,
            self.embeddings_id,
            self.finetune,
            self.store,
            self.refresh_finetune,
            ft,
        )
        evaluations = [
            _call(
                evaluate_task,
                self.prompts_id,
                c,
                model_id,
                self.embeddings_id,
                self.store,
                self.refresh_evaluate,
                slot,
            )
            for c in self.evaluations
        ]
        return {"model": model_id, "evaluations": evaluations}
