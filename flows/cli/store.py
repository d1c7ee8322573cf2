"""``llara store ...``: list, verify and clean the artifact store (mounted on the main CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from artifacts import ArtifactStore
from stages.registry import NAMES, OLD_NAMES

store_app = typer.Typer(help="Inspect and clean the artifact store.", no_args_is_help=True)

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar="LLARA_STORE",
        help="Artifact store root [default: the store of the artifacts given by path, else ./.llara/store].",
    ),
]


@store_app.command("ls")
def store_ls(
    store: StoreOption = None,
    stage: Annotated[
        str | None, typer.Option(help="Only this stage (and what it wrote under an old name).")
    ] = None,
) -> None:
    """List artifacts: id, stage, created, size, wall time.

    The stage is the name ``llara stage`` runs it by. An artifact written under an old stage name
    is listed with that name and marked: it stays readable by id, but no cache lookup reuses it.
    """
    artifact_store = ArtifactStore(store)
    rows = [a for a in artifact_store if stage is None or stage in (a.stage, OLD_NAMES.get(a.stage))]
    if not rows:
        typer.echo(f"no artifacts in {artifact_store.root}")
        return
    typer.echo(f"{'id':<18}{'stage':<20}{'created (UTC)':<22}{'size':>10}{'wall':>9}")
    for a in sorted(rows, key=lambda a: a.manifest["created"]):
        size = sum(f["size"] for f in a.manifest["files"].values())
        created = a.manifest["created"][:19].replace("T", " ")
        typer.echo(
            f"{a.id:<18}{a.stage:<20}{created:<22}{_human(size):>10}{a.manifest['wall_time_s']:>8.1f}s"
            + _stage_note(a.stage)
        )


def _stage_note(name: str) -> str:
    """A mark after an artifact whose stage is not a current stage name."""
    if name in NAMES:
        return ""
    if name in OLD_NAMES:
        return f"  (old stage name, now {OLD_NAMES[name]}: not reused by the cache)"
    return "  (unknown stage)"


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
