"""``llara run``: the whole pipeline on this machine, as the ``reproduce`` flow (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.resources import NprocOption
from flows.cli.settings import BackboneOption, MaxStepsOption, ProfileOption
from flows.cli.store import StoreOption
from stages.registry import NAMES


def run_command(
    source: Annotated[
        str, typer.Option(help="Data source, as for `llara prepare`.")
    ] = "bundled:movielens-100k",
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="See `llara prepare --help`.")] = False,
    profile: ProfileOption = "quick",
    backbone: BackboneOption = None,
    sr_baseline: Annotated[
        list[str] | None,
        typer.Option(help="Recommender baseline rows [default: gru4rec caser sasrec morec]."),
    ] = None,
    llara_sr: Annotated[
        list[str] | None,
        typer.Option(help="Recommenders whose embeddings feed LLaRA rows [default: sasrec]."),
    ] = None,
    schedule: Annotated[
        list[str] | None,
        typer.Option(
            help="curriculum | direct | two-stage | text (TALLRec) | llara-official [default: the profile's: "
            "direct for cpu, curriculum for the others]. "
            "The first makes every LLaRA(SR) row; the rest are ablations on the first --llara-sr."
        ),
    ] = None,
    seed: Annotated[list[int] | None, typer.Option(help="Training seeds [default: 0].")] = None,
    sr_checkpoint: Annotated[
        list[str] | None,
        typer.Option(
            metavar="sasrec=FILE",
            help="A released LLaRA SASRec checkpoint (rec_model/*.pt; needs --allow-pickle): adds the rows "
            "'SASRec (released)' and 'LLaRA(SASRec, released)' on its embeddings.",
        ),
    ] = None,
    zero_shot: Annotated[bool, typer.Option(help="Also evaluate the backbone zero-shot.")] = True,
    refresh: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Recompute this stage even if cached ({', '.join(NAMES)})."
        ),
    ] = None,
    store: StoreOption = None,
    max_parallel: Annotated[
        int,
        typer.Option(
            min=1, help="Independent branches (recommenders; fine-tunes + their evaluations) at once."
        ),
    ] = 1,
    nproc_per_node: NprocOption = 1,
    max_steps: MaxStepsOption = None,
    precision: Annotated[
        str,
        typer.Option(
            help="auto | bf16 | fp32: the LLM stages' precision; auto is bf16 mixed precision on a GPU "
            "or a CPU with bf16 matrix units (AVX512-BF16, AMX), fp32 elsewhere."
        ),
    ] = "auto",
) -> None:
    """Run the full pipeline locally (no server needed) and print where the report is.

    When every stage is already in the store and no Prefect server is configured, it prints the
    report without starting a flow run (and so without a temporary server).
    """
    from prefect.settings import get_current_settings

    from flows.common import check_refresh
    from flows.reproduce import reproduce_cached, reproduce_flow

    try:
        check_refresh(refresh)  # here, to name the new stage name of an old one
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--refresh") from e
    checkpoints = {}
    for text in sr_checkpoint or []:
        name, sep, file = text.partition("=")
        if not sep or name != "sasrec" or not file:
            raise typer.BadParameter(f"{text!r}: expected sasrec=FILE", param_hint="--sr-checkpoint")
        checkpoints[name] = str(Path(file).resolve())
    parameters = dict(
        source=source,
        allow_pickle=allow_pickle,
        profile=profile,
        backbone=backbone,
        sr_baselines=sr_baseline,
        llara_sr_models=llara_sr,
        schedules=schedule,
        seeds=seed,
        sr_checkpoints=checkpoints,
        zero_shot=zero_shot,
        refresh=refresh,
        store=str(store) if store else None,
        max_parallel=max_parallel,
        precision=precision,
        max_steps=max_steps,
        nproc_per_node=nproc_per_node if nproc_per_node > 1 else None,  # 1: the profile's
    )
    # Without a Prefect server (no API URL) a run of cache hits would start a temporary one just
    # to record nothing new; with a server it runs as a flow, so the UI shows it.
    result = reproduce_cached(**parameters) if get_current_settings().api.url is None else None
    if result is not None:
        typer.echo(f"every stage is cached ({len(result['results'])} result rows): no flow run was needed")
    else:
        result = reproduce_flow(**parameters)
    typer.echo(f"report: {result['report_path']}")
