"""``llara report``: the report over the result artifacts in the store (prints where report.md is)."""

from __future__ import annotations

from typing import Annotated

import typer

from artifacts import ArtifactStore
from flows.cli.store import StoreOption


def report_command(
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
