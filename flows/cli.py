"""The ``llara`` command line: each subcommand maps to a plain function in ``tasks``/``flows``.

Stage commands print the artifact directory as the last line of stdout, so scripts can do
``data=$(llara prepare bundled:movielens-100k | tail -n 1)``. Logs go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from artifacts import ArtifactError, ArtifactStore
from flows.cli_evaluate import evaluate_command
from flows.cli_pretrain import import_sr_command, pretrain_command
from flows.cli_resources import (
    HostfileOption,
    MasterAddrOption,
    MasterPortOption,
    NnodesOption,
    NodeRankOption,
    NprocOption,
    resources_of,
)
from flows.cli_serve import serve_command
from flows.cli_settings import (
    BackboneOption,
    MaxStepsOption,
    ProfileOption,
    RefreshOption,
    SetOption,
    checked_settings,
)
from flows.cli_stage import STAGE_HELP, stage_command
from flows.cli_store import StoreOption, store_app
from flows.run_errors import drop_user_error_tracebacks
from flows.serve import ServeError
from stages.errors import DataError
from stages.registry import NAMES

app = typer.Typer(
    help="Reproducible LLaRA: prepare data, pretrain recommenders, fine-tune an LLM, evaluate, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(store_app, name="store")


class TitleMode(StrEnum):
    clean = "clean"
    llara = "llara"


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
) -> None:
    # Our own progress at INFO; libraries (httpx, transformers...) only when something is wrong.
    logging.getLogger("llara").setLevel(logging.WARNING if quiet else logging.INFO)
    if quiet:  # progress bars too: Hugging Face reads this when imported, else is told directly
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        if "transformers" in sys.modules:
            sys.modules["transformers"].utils.logging.disable_progress_bar()
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


@app.command()
def prepare(
    source: Annotated[
        str,
        typer.Argument(
            help="bundled:movielens-100k | ml100k:DIR | recbole:DIR | hetrec-lastfm:DIR | steam:FILE | "
            "llara-release:DIR (the authors' pickled splits; needs --allow-pickle)"
        ),
    ],
    seed: Annotated[int, typer.Option(help="Seed of the frozen val/test candidates.")] = 0,
    title_mode: Annotated[
        TitleMode, typer.Option(help="clean: normalised unique titles; llara: the public code's titles.")
    ] = TitleMode.clean,
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle",
            help="Allow unpickling the llara-release files. Unpickling runs code: only for files you trust.",
        ),
    ] = False,
    train_from: Annotated[
        str | None,
        typer.Option(
            help="llara-release:DIR without train_data.df (MovieLens): keep the released val/test rows "
            "exactly and build train rows from this raw source's other users, e.g. bundled:movielens-100k.",
        ),
    ] = None,
    min_rating: Annotated[
        float | None, typer.Option(help="Keep only interactions rated at least this (sources with ratings).")
    ] = None,
    store: StoreOption = None,
    refresh: RefreshOption = False,
) -> None:
    """Turn a raw data source into a prepared-dataset artifact (Parquet + card)."""
    from stages.preprocess import PrepareConfig
    from tasks.prepare import prepare as prepare_fn

    try:
        config = PrepareConfig(source=source, seed=seed, title_mode=title_mode.value,
                               allow_pickle=allow_pickle, train_from=train_from, min_rating=min_rating)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    artifact, _ = prepare_fn(config, ArtifactStore(store), refresh=refresh)
    typer.echo(artifact.path)


@app.command()
def run(
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
            help="curriculum | direct | two-stage | text (TALLRec) | llara-official [default: curriculum]. "
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
        nproc_per_node=nproc_per_node if nproc_per_node > 1 else None,  # 1: the profile's
        max_steps=max_steps,
    )
    # Without a Prefect server (no API URL) a run of cache hits would start a temporary one just
    # to record nothing new; with a server it runs as a flow, so the UI shows it.
    result = reproduce_cached(**parameters) if get_current_settings().api.url is None else None
    if result is not None:
        typer.echo(f"every stage is cached ({len(result['results'])} result rows): no flow run was needed")
    else:
        result = reproduce_flow(**parameters)
    typer.echo(f"report: {result['report_path']}")


app.command("pretrain")(pretrain_command)
app.command("import-sr")(import_sr_command)


@app.command()
def finetune(
    prompts: Annotated[
        str, typer.Option(help="Prompts artifact (path or id), from `llara stage prompts`.")
    ],
    embeddings: Annotated[
        str, typer.Option(help="Item-embedding artifact (path or id), from `llara stage embeddings`.")
    ],
    profile: ProfileOption = "quick",
    schedule: Annotated[
        str, typer.Option(help="curriculum | direct | text | two-stage | llara-official.")
    ] = "curriculum",
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

    artifact_store = ArtifactStore(store)
    prompt_set, emb = artifact_store.open(prompts), artifact_store.open(embeddings)
    dataset = artifact_store.get(prompt_set.manifest["inputs"]["dataset"])
    domain = json.loads((dataset.path / "dataset.json").read_text())["domain"]
    backbone = prompt_set.manifest["config"]["config"]["backbone"]
    plan = pipeline_profile(profile, domain, backbone, max_steps)
    config = replace(plan.finetune, schedule=schedule, seed=seed)
    config = apply_settings(config, checked_settings(config, settings))
    resources = resources_of(nproc_per_node, nnodes, node_rank, master_addr, master_port, hostfile)
    trained = finetune_fn(prompt_set, emb, config, artifact_store, refresh=refresh, resources=resources)
    typer.echo(trained.path)


@app.command()
def report(
    result: Annotated[
        list[str] | None,
        typer.Option(help="evaluate/pretrain/finetune artifact ids [default: all in the store]."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Write the report (results.parquet, report.md, PNG plots) and print where report.md is."""
    from flows.stage_flows import report_flow

    artifact_id = report_flow(results=result, store=str(store) if store else None)
    typer.echo(ArtifactStore(store).get(artifact_id).path / "report.md")


app.command("evaluate")(evaluate_command)
app.command("stage", help=STAGE_HELP)(stage_command)
app.command("serve")(serve_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit code."""
    args = sys.argv[1:] if argv is None else argv
    # Also for the temporary server Prefect starts when no API is configured (`llara run`):
    # its telemetry cannot reach the internet here and would log ERROR lines.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect waits 20 s for that temporary server; a fresh one takes 14-19 s on 2 idle cores and
    # more on a busy machine, so its default turns a slow start into a failed run.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if "--debug" not in args:
        drop_user_error_tracebacks((DataError, ArtifactError, ServeError))
    try:
        app(args=args, prog_name="llara")
    except (DataError, ArtifactError, ServeError) as error:
        if "--debug" in args:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except Exception as error:  # noqa: BLE001 - last resort: one line, traceback only with --debug
        if "--debug" in args:
            raise
        message = " ".join(str(error).split())  # one line even for a multi-line validation message
        typer.echo(
            f"error: {type(error).__name__}: {message} (rerun with --debug for the traceback)", err=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
