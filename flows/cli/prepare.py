"""``llara prepare``: a raw data source as a prepared-dataset artifact (prints its path last)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from artifacts import ArtifactStore
from flows.cli.settings import RefreshOption
from flows.cli.store import StoreOption


class TitleMode(StrEnum):
    clean = "clean"
    llara = "llara"


def prepare_command(
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
    from tasks.direct import prepare as prepare_fn

    try:
        config = PrepareConfig(source=source, seed=seed, title_mode=title_mode.value,
                               allow_pickle=allow_pickle, train_from=train_from, min_rating=min_rating)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    artifact, _ = prepare_fn(config, ArtifactStore(store), refresh=refresh)
    typer.echo(artifact.path)
