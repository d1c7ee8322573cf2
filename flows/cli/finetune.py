"""``llara finetune``: LoRA + projector fine-tuning straight on the stages, without a Prefect server
(prints the fine-tuned model artifact's path last)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from artifacts import ArtifactStore
from flows.cli.resources import (
    HostfileOption,
    MasterAddrOption,
    MasterPortOption,
    NnodesOption,
    NodeRankOption,
    NprocOption,
    resources_of,
)
from flows.cli.settings import MaxStepsOption, ProfileOption, RefreshOption, SetOption, checked_settings
from flows.cli.store import StoreOption


def finetune_command(
    prompts: Annotated[
        str, typer.Option(help="Prompts artifact (path or id), from `llara stage prompts`.")
    ],
    embeddings: Annotated[
        str, typer.Option(help="Item-embedding artifact (path or id), from `llara stage embeddings`.")
    ],
    profile: ProfileOption = "quick",
    schedule: Annotated[
        str | None,
        typer.Option(
            help="curriculum | direct | text | two-stage | llara-official [default: the profile's: "
            "direct for cpu, curriculum for the others]."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    max_steps: MaxStepsOption = None,
    settings: SetOption = None,
    store: StoreOption = None,
    refresh: RefreshOption = False,
    nproc_per_node: NprocOption = 1,
    nnodes: NnodesOption = 1,
    node_rank: NodeRankOption = 0,
    master_addr: MasterAddrOption = "127.0.0.1",
    master_port: MasterPortOption = 0,
    hostfile: HostfileOption = None,
) -> None:
    """Fine-tune the LLM with LoRA + projector under DeepSpeed ZeRO; a killed run resumes when rerun.

    The kept weights are those of the step selected on validation (see ``summary.json``'s
    ``selection``). Prints the fine-tuned model artifact's path last.
    """
    from dataclasses import replace

    from flows.profiles import pipeline_profile
    from stages.settings import apply_settings
    from tasks.llm import finetune as finetune_fn

    artifact_store = ArtifactStore.for_inputs(store, prompts, embeddings)  # given by path: their store
    prompt_set, emb = artifact_store.open(prompts), artifact_store.open(embeddings)
    dataset = artifact_store.get(prompt_set.manifest["inputs"]["dataset"])
    domain = json.loads((dataset.path / "dataset.json").read_text())["domain"]
    backbone = prompt_set.manifest["config"]["config"]["backbone"]
    plan = pipeline_profile(profile, domain, backbone, max_steps)
    config = replace(plan.finetune, schedule=schedule or plan.finetune.schedule, seed=seed)
    config = apply_settings(config, checked_settings(config, settings))
    resources = resources_of(nproc_per_node, nnodes, node_rank, master_addr, master_port, hostfile)
    trained = finetune_fn(prompt_set, emb, config, artifact_store, refresh=refresh, resources=resources)
    typer.echo(trained.path)
