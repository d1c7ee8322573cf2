"""What every stage task shares: the logger to use and the store to write to."""

from __future__ import annotations

import logging
from pathlib import Path

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from artifacts import ArtifactStore


def stage_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run (so the UI shows it), else ``llara``."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("llara")


def open_store(root: str | Path | None) -> ArtifactStore:
    return ArtifactStore(root)
