"""The ``llara`` command line: each subcommand maps to a plain function in ``tasks``/``flows``.

Stage commands print the artifact directory as the last line of stdout, so scripts can do
``data=$(llara prepare bundled:movielens-100k | tail -n 1)``. Logs go to stderr.
"""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from artifacts import ArtifactError, ArtifactStore
from stages.errors import DataError

app = typer.Typer(
    help="Reproducible LLaRA: prepare data, pretrain recommenders, fine-tune an LLM, evaluate, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
store_app = typer.Typer(help="Inspect and clean the artifact store.", no_args_is_help=True)
app.add_typer(store_app, name="store")

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", envvar="LLARA_STORE", help="Artifact store root [default: ./.llara/store]."),
]
RefreshOption = Annotated[bool, typer.Option("--refresh", help="Recompute even if a valid artifact exists.")]


class TitleMode(StrEnum):
    clean = "clean"
    llara = "llara"


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
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
    store: StoreOption = None,
    refresh: RefreshOption = False,
) -> None:
    """Turn a raw data source into a prepared-dataset artifact (Parquet + card)."""
    from stages.preprocess import PrepareConfig
    from tasks.prepare import prepare as prepare_fn

    config = PrepareConfig(source=source, seed=seed, title_mode=title_mode.value, allow_pickle=allow_pickle)
    artifact, _ = prepare_fn(config, ArtifactStore(store), refresh=refresh)
    typer.echo(artifact.path)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port of the Prefect API and UI on 127.0.0.1.")] = 4200,
    prefect_home: Annotated[
        Path, typer.Option(envvar="PREFECT_HOME", help="Prefect state (SQLite database, logs).")
    ] = Path(".llara/prefect"),
    store: StoreOption = None,
) -> None:
    """Start a local Prefect server (SQLite) with the work pool, every deployment and a worker.

    Open the printed UI address, pick Deployments -> llara-reproduce -> Run to start the full
    pipeline, or llara-<stage> to rerun one stage. Ctrl-C stops the worker and the server.
    """
    from artifacts import default_store_root
    from flows.serve import ServeConfig
    from flows.serve import serve as serve_fn

    serve_fn(ServeConfig(port=port, prefect_home=prefect_home, store=store or default_store_root()))


@store_app.command("ls")
def store_ls(
    store: StoreOption = None,
    stage: Annotated[str | None, typer.Option(help="Only this stage.")] = None,
) -> None:
    """List artifacts: id, stage, created, size, wall time."""
    artifact_store = ArtifactStore(store)
    rows = [a for a in artifact_store if stage is None or a.stage == stage]
    if not rows:
        typer.echo(f"no artifacts in {artifact_store.root}")
        return
    typer.echo(f"{'id':<18}{'stage':<20}{'created (UTC)':<22}{'size':>10}{'wall':>9}")
    for a in sorted(rows, key=lambda a: a.manifest["created"]):
        size = sum(f["size"] for f in a.manifest["files"].values())
        created = a.manifest["created"][:19].replace("T", " ")
        typer.echo(
            f"{a.id:<18}{a.stage:<20}{created:<22}{_human(size):>10}{a.manifest['wall_time_s']:>8.1f}s"
        )


@store_app.command("verify")
def store_verify(store: StoreOption = None) -> None:
    """Rehash every file of every artifact against its manifest; exit 1 if any is invalid."""
    artifact_store = ArtifactStore(store)
    bad = 0
    for a in artifact_store:
        problems = artifact_store.problems(a.id, full=True)
        bad += bool(problems)
        typer.echo(f"{a.id} {a.stage}: " + ("ok" if not problems else "; ".join(problems)))
    if bad:
        raise typer.Exit(1)


@store_app.command("gc")
def store_gc(
    store: StoreOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
) -> None:
    """Remove leftovers of killed stages and artifacts that fail verification."""
    removed = ArtifactStore(store).gc(dry_run=dry_run)
    for path in removed:
        typer.echo(("would remove " if dry_run else "removed ") + str(path))
    typer.echo(f"{len(removed)} path(s) {'to remove' if dry_run else 'removed'}")


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}GB"


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, prog_name="llara")
    except (DataError, ArtifactError) as error:
        if "--debug" in args:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except Exception as error:  # noqa: BLE001 - last resort: one line, traceback only with --debug
        if "--debug" in args:
            raise
        typer.echo(f"error: {type(error).__name__}: {error} (rerun with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
