"""Shared flow plumbing: finding inputs, stage names for ``refresh``, and UI artifacts."""

from __future__ import annotations

import os
from pathlib import Path

from prefect import runtime
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from artifacts import Artifact, ArtifactError, ArtifactStore
from flows.serve import PICKLE_OPT_IN_ENV
from stages.registry import NAMES, OLD_NAMES
from tasks.common import stage_logger

# Stage names a flow's ``refresh`` parameter accepts: every stage of the registry.
STAGES = NAMES


def check_refresh(refresh: list[str] | None) -> set[str]:
    unknown = set(refresh or ()) - set(STAGES)
    if unknown:
        renamed = "".join(f"; {old!r} is now {OLD_NAMES[old]!r}" for old in sorted(unknown & set(OLD_NAMES)))
        raise ValueError(
            f"refresh: unknown stage(s) {sorted(unknown)}; choose from {', '.join(STAGES)}{renamed}"
        )
    return set(refresh or ())


class PickleRefused(PermissionError):
    """A deployment run asked to unpickle files on a worker that did not opt in."""


def check_pickle_opt_in(allow_pickle: bool) -> None:
    """Honour ``allow_pickle`` from a deployment run only where the worker opted in.

    A deployment's parameters come from whoever reaches the UI or the API, and unpickling runs
    code, so the choice belongs to whoever started the worker (``llara serve --allow-pickle``).
    A flow called in-process (``llara run --allow-pickle``, a script) has no deployment and is
    the caller's own decision.
    """
    if allow_pickle and runtime.deployment.id and os.environ.get(PICKLE_OPT_IN_ENV) != "1":
        raise PickleRefused(
            "allow_pickle: refused for a deployment run, because anyone who reaches the UI can set "
            "it and unpickling runs code. To allow it, restart the server with "
            "`llara serve --allow-pickle` (or start the worker with "
            f"{PICKLE_OPT_IN_ENV}=1), or run `llara prepare SOURCE --allow-pickle` on this machine"
        )


def resolve(store: ArtifactStore, stage: str, artifact_id: str | None) -> Artifact:
    """The artifact named by id, else the latest valid artifact of ``stage`` (never one stored
    under the stage's old name: those are used only when named by id, with a warning)."""
    if artifact_id:
        artifact = store.get(artifact_id)
        if OLD_NAMES.get(artifact.stage) == stage:
            stage_logger().warning(
                "artifact %s was written under the old stage name %r (now %r); using it because its id "
                "was given", artifact.id, artifact.stage, stage,
            )
        return artifact
    latest = store.latest(stage)
    if latest is None:
        raise ArtifactError(f"{store.objects}: no {stage} artifact yet; run the {stage} stage first")
    return latest


def publish_report_to_ui(report: Artifact, key: str = "llara-report") -> None:
    """A table artifact of the results and a markdown artifact of the report, in the Prefect UI."""
    import polars as pl

    results = report.path / "results.parquet"
    if results.is_file():
        rows = pl.read_parquet(results).to_dicts()
        create_table_artifact(
            key=f"{key}-results",
            table=[{k: _ui_value(v) for k, v in row.items()} for row in rows],
            description=f"Results table; files in {report.path}",
        )
    markdown = (report.path / "report.md").read_text()
    create_markdown_artifact(
        key=key,
        markdown=f"{markdown}\n\n---\nArtifact `{report.id}`: `{report.path}` "
        f"(report.md, results.parquet, {', '.join(p.name for p in sorted(Path(report.path).glob('*.png')))})",
        description=f"LLaRA reproduction report {report.id}",
    )


def _ui_value(value: object) -> object:
    return round(value, 4) if isinstance(value, float) else value
