"""``llara stage NAME``: one stage as its own Prefect flow, reusing the cached artifacts of the
others. The choices are ``stages.registry``'s names, the same as the flows, the deployments and
the ``stage`` of the artifacts ``llara store ls`` lists."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from artifacts import ArtifactStore
from flows.cli.settings import BackboneOption, ProfileOption, RefreshOption, SetOption, checked_settings
from flows.cli.store import StoreOption
from stages.registry import STAGES

StageName = StrEnum("StageName", [(s.name.replace("-", "_"), s.name) for s in STAGES])

STAGE_HELP = (
    "Run one stage as its own flow, reusing cached artifacts of the others; prints the artifact path.\n\n"
    + "\n\n".join(f"{s.name}: {s.summary} (reads {', '.join(s.reads) or 'a data source'})." for s in STAGES)
    + "\n\n``--set FIELD=VALUE`` overrides the stage's config (text-embeddings, pretrain, prompts, "
    "finetune, evaluate)."
)


def stage_command(
    name: Annotated[StageName, typer.Argument(help="Which stage to run alone.")],
    source: Annotated[str, typer.Option(help="prepare: data source.")] = "bundled:movielens-100k",
    allow_pickle: Annotated[
        bool, typer.Option("--allow-pickle", help="prepare, import-sr: allow unpickling.")
    ] = False,
    checkpoint: Annotated[
        str | None, typer.Option(help="import-sr: a released LLaRA checkpoint file (rec_model/*.pt).")
    ] = None,
    input_id: Annotated[
        list[str] | None,
        typer.Option("--input", help="Input artifact id(s) [default: the latest of the stage read from]."),
    ] = None,
    profile: ProfileOption = "quick",
    backbone: BackboneOption = None,
    schedule: Annotated[
        str | None, typer.Option(help="finetune: curriculum schedule [default: the profile's].")
    ] = None,
    mode: Annotated[str, typer.Option(help="evaluate: scoring or generation.")] = "scoring",
    zero_shot: Annotated[bool, typer.Option("--zero-shot", help="evaluate: the backbone untuned.")] = False,
    endpoint: Annotated[
        str | None, typer.Option(help="evaluate: OpenAI-compatible base URL for a zero-shot row (off).")
    ] = None,
    endpoint_model: Annotated[str, typer.Option(help="evaluate: model name sent to --endpoint.")] = "",
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    settings: SetOption = None,
    refresh: RefreshOption = False,
    store: StoreOption = None,
) -> None:
    from flows import prepare as prepare_flows
    from flows import stage_flows

    if settings:
        if name.value not in stage_flows.STAGE_CONFIGS:
            raise typer.BadParameter(f"the {name.value} stage takes no --set", param_hint="--set")
        settings = checked_settings(stage_flows.STAGE_CONFIGS[name.value](), settings)

    root = str(store) if store else None
    ids = list(input_id or [])
    first = ids[0] if ids else None
    second = ids[1] if len(ids) > 1 else None
    common = {"refresh": refresh, "store": root}
    if name == "prepare":
        artifact_id = prepare_flows.prepare_flow(source=source, allow_pickle=allow_pickle, **common)
    elif name == "text-embeddings":
        artifact_id = stage_flows.text_embeddings_flow(data=first, settings=settings, **common)
    elif name == "pretrain":
        trained = stage_flows.pretrain_flow(
            data=first, seeds=[seed], profile=profile, settings=settings, **common
        )
        artifact_id = list(trained.values())[-1]
    elif name == "import-sr":
        if not checkpoint:
            raise typer.BadParameter("the import-sr stage needs --checkpoint FILE", param_hint="--checkpoint")
        artifact_id = stage_flows.import_sr_flow(
            checkpoint=checkpoint, data=first, allow_pickle=allow_pickle, seed=seed, **common
        )
    elif name == "embeddings":
        artifact_id = stage_flows.embeddings_flow(model=first, **common)
    elif name == "prompts":
        artifact_id = stage_flows.prompts_flow(
            data=first, profile=profile, backbone=backbone, settings=settings, **common
        )
    elif name == "finetune":
        artifact_id = stage_flows.finetune_flow(
            prompts=first, embeddings=second, schedule=schedule, seed=seed, profile=profile,
            backbone=backbone, settings=settings, **common,
        )
    elif name == "evaluate":
        artifact_id = stage_flows.evaluate_flow(
            prompts=first, model=second, mode=mode, zero_shot=zero_shot, profile=profile, backbone=backbone,
            endpoint=endpoint, endpoint_model=endpoint_model, settings=settings, **common,
        )
    else:
        artifact_id = stage_flows.report_flow(results=ids or None, **common)
    typer.echo(ArtifactStore(store).get(artifact_id).path)
