"""``llara evaluate``: one evaluation straight on the stages, without a Prefect server (like
``llara finetune``), printing the evaluate artifact's path last."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import Annotated

import typer

from flows.cli.store import StoreOption


class EvalMode(StrEnum):
    scoring = "scoring"
    generation = "generation"


def evaluate_command(
    prompts: Annotated[
        str, typer.Option(help="Prompts artifact (path or id), from `llara stage prompts`.")
    ],
    model: Annotated[
        str | None,
        typer.Option(help="Fine-tuned model artifact (path or id), from `llara finetune`; none: zero-shot."),
    ] = None,
    embeddings: Annotated[
        str | None,
        typer.Option(
            help="Item-embedding artifact (path or id) [default: the one the model was trained on]."
        ),
    ] = None,
    mode: Annotated[
        EvalMode, typer.Option(help="Candidate scoring or greedy generation.")
    ] = EvalMode.scoring,
    profile: Annotated[
        str, typer.Option(help="smoke, quick, paper, long or cpu: batch sizes, row limits.")
    ] = "quick",
    store: StoreOption = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Recompute even if cached.")] = False,
    nproc_per_node: Annotated[
        int, typer.Option(min=1, help="Processes the rows are sharded over (torchrun); the same metrics.")
    ] = 1,
) -> None:
    """Evaluate a fine-tuned model (or the backbone zero-shot) on the frozen test candidates."""
    from artifacts import ArtifactStore
    from flows.profiles import pipeline_profile
    from flows.row_names import evaluation_row
    from stages.inputs import read_json
    from stages.launch import Resources
    from tasks.evaluate import evaluate

    artifact_store = ArtifactStore.for_inputs(store, prompts, model, embeddings)  # by path: their store
    prompt_set = artifact_store.open(prompts)
    dataset = artifact_store.get(prompt_set.manifest["inputs"]["dataset"])
    domain = read_json(dataset.path / "dataset.json", ("domain",))["domain"]
    trained = artifact_store.open(model) if model else None
    # The backbone is the fine-tune's own (or, zero-shot, the prompts'): the stage then checks that
    # the prompts were built for it.
    chosen = trained or prompt_set
    backbone = chosen.manifest["config"]["config"]["backbone"]
    config = replace(pipeline_profile(profile, domain, backbone).evaluate, mode=mode.value)
    emb = None
    if trained is not None:
        emb = artifact_store.open(embeddings or trained.manifest["inputs"]["embeddings"])
        seed = trained.manifest["config"]["config"]["seed"]
        config = replace(config, row=evaluation_row(trained, emb), seed=seed)
    resources = Resources(nproc_per_node=nproc_per_node)  # rows sharded over processes; same artifact
    result = evaluate(prompt_set, config, artifact_store, trained, emb, refresh=refresh, resources=resources)
    typer.echo(result.path)
