"""Flow: raw data source -> prepared-dataset artifact."""

from __future__ import annotations

from prefect import flow

from flows.choices import TitleMode
from flows.common import check_pickle_opt_in
from stages.preprocess import PrepareConfig
from tasks.prepare import prepare_task


@flow(name="prepare", log_prints=True)
def prepare_flow(
    source: str = "bundled:movielens-100k",
    seed: int = 0,
    title_mode: TitleMode = "clean",
    allow_pickle: bool = False,
    store: str | None = None,
    refresh: bool = False,
) -> str:
    """Prepare a dataset; returns the artifact id. A second run on unchanged input is a cache hit.

    Args:
        source: bundled:movielens-100k, ml100k:DIR, recbole:DIR, hetrec-lastfm:DIR, steam:FILE or
            llara-release:DIR (the authors' pickled splits; needs allow_pickle).
        seed: Seed of the frozen validation and test candidates.
        title_mode: clean (normalised, unique titles) or llara (the public code's titles).
        allow_pickle: Unpickle llara-release files. Unpickling runs code, so a run started from the
            UI honours this only when the server was started with `llara serve --allow-pickle`.
        store: Artifact store directory. Empty: the worker's (LLARA_STORE, else .llara/store).
        refresh: Recompute even when a valid cached artifact exists.
    """
    check_pickle_opt_in(allow_pickle)
    config = PrepareConfig(source=source, seed=seed, title_mode=title_mode, allow_pickle=allow_pickle)
    return prepare_task(config, store, refresh=refresh)
