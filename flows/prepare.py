"""Flow: raw data source -> prepared-dataset artifact."""

from __future__ import annotations

from prefect import flow

from flows.common import check_pickle_opt_in
from stages.preprocess import PrepareConfig
from tasks.prepare import prepare_task


@flow(name="prepare", log_prints=True)
def prepare_flow(
    source: str = "bundled:movielens-100k",
    seed: int = 0,
    title_mode: str = "clean",
    allow_pickle: bool = False,
    store: str | None = None,
    refresh: bool = False,
) -> str:
    """Prepare a dataset; returns the artifact id. A second run on unchanged input is a cache hit."""
    check_pickle_opt_in(allow_pickle)
    config = PrepareConfig(source=source, seed=seed, title_mode=title_mode, allow_pickle=allow_pickle)
    return prepare_task(config, store, refresh=refresh)
