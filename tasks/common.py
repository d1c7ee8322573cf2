"""What every stage task shares: the logger, the store, and running a stage through the store.

Prefect is imported only where a Prefect run can exist, i.e. once something else has imported it:
``llara prepare`` runs its stage straight through the store and must not pay Prefect's import
(about 0.9 s, more than the stage takes on MovieLens-100K).
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from artifacts import Artifact, ArtifactStore, artifact_id, stage_code_version
from stages.process import scoped_process_state
from stages.registry import module_file, stage

ROOT = Path(__file__).resolve().parents[1]  # the directory holding ``stages/``


def stage_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run (so the UI shows it), else ``llara``."""
    if "prefect" not in sys.modules:  # no run can exist without it
        return logging.getLogger("llara")
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("llara")


def _reported(name: str, aid: str) -> AbstractContextManager[None]:
    """The stage's progress on its Prefect task run (``tasks.progress``); nothing outside Prefect."""
    if "prefect" not in sys.modules:
        return nullcontext()
    from tasks.progress import reported

    return reported(name, aid)


def open_store(root: str | Path | None) -> ArtifactStore:
    return ArtifactStore(root)


def identity_of(config: Any) -> Any:
    """The config fields that decide the output. A config class lists the others (threads,
    progress bars) in ``NOT_IN_ID`` so that changing them reuses the cached artifact."""
    if not is_dataclass(config):
        return config
    if hasattr(config, "resolved"):  # e.g. ``precision: auto`` -> bf16: a bf16 artifact is not an fp32 one
        config = config.resolved()
    skip = getattr(type(config), "NOT_IN_ID", ())
    return {k: v for k, v in asdict(config).items() if k not in skip}


def stage_run(name: str) -> Callable[..., Any]:
    """The ``run`` of stage ``name``, imported only now: the stage modules load torch and
    transformers, which a run whose stages are all cached never needs."""
    return importlib.import_module(stage(name).module).run


def stage_code(name: str) -> str:
    """The code version of stage ``name`` (``artifacts.identity.stage_code_version``), from its
    sources, without importing it."""
    return stage_code_version(ROOT / module_file(stage(name)))


def _scoped(name: str, aid: str, run: Any, *args: Any, **kwargs: Any) -> Any:
    """``run(*args, **kwargs)`` with the process state restored after it (``stages.process``) and,
    in a Prefect run, its progress shown on the task run (``tasks.progress``)."""
    with scoped_process_state(), _reported(name, aid):
        return run(*args, **kwargs)


def run_stage(
    name: str,
    config: Any,
    inputs: dict[str, Artifact],
    store: ArtifactStore,
    refresh: bool = False,
    key_extra: dict[str, Any] | None = None,
    resumable: bool = False,
    run: Any = None,
) -> tuple[Artifact, bool]:
    """Build (or reuse) the artifact of stage ``name`` (its module's ``run(config, inputs)``);
    returns (artifact, cache_hit). The stage module is imported only when the artifact is computed.

    The code version covers the stage's whole package plus every ``stages`` module it imports
    (``stages/candidates.py``, ``stages/contract.py``...), so an edit to any code the stage runs
    yields a new id. ``key_extra`` adds facts the config does not capture
    (such as the fingerprint of raw files outside the store). A ``resumable`` stage gets a
    ``checkpoint_dir`` that survives a killed run, so rerunning the same stage resumes it.
    ``run`` replaces the module's ``run`` (same signature), e.g. to run it in child processes
    (``tasks.launched``); the id stays the stage's.
    """
    if hasattr(config, "resolved"):  # the stage runs what the id says (``identity_of``)
        config = config.resolved()
    key = {"config": identity_of(config), **(key_extra or {})}
    code = stage_code(name)
    paths = {role: a.path for role, a in inputs.items()}
    extra: dict[str, Any] = {}
    aid = artifact_id(name, key, {r: a.id for r, a in inputs.items()}, code)
    if resumable:  # the store creates, clears (refresh) and removes it under the artifact's lock
        extra = {"checkpoint_dir": store.scratch(aid), "resume": True}
    artifact, hit = store.build(
        name,
        key,
        inputs=inputs,
        code=code,
        produce=lambda out: _scoped(name, aid, run or stage_run(name), config, paths, out, **extra),
        logger=stage_logger(),
        refresh=refresh,
        resumable=resumable,
    )
    return artifact, hit
