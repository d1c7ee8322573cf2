"""Stages run straight through the store, without Prefect: what a CLI command calls when it needs
no flow. Importing Prefect costs about 0.9 s, more than ``prepare`` takes on MovieLens-100K, so
this module and what it imports stay free of it (``tests/flows/test_light_imports.py``)."""

from __future__ import annotations

from artifacts import Artifact, ArtifactStore
from stages.preprocess.config import PrepareConfig
from stages.preprocess.prepare import source_fingerprint  # polars only: the id needs the raw files
from tasks.common import run_stage


def prepare(config: PrepareConfig, store: ArtifactStore, refresh: bool = False) -> tuple[Artifact, bool]:
    """Build (or reuse) the prepared dataset. The id covers the raw files' fingerprint, so editing
    the user's data makes a new artifact."""
    fingerprint = {"source_files": source_fingerprint(config)}
    return run_stage("prepare", config, {}, store, refresh=refresh, key_extra=fingerprint)
