"""The artifact store: content-addressed stage outputs, written atomically, verified on read.

Layout under the root::

    objects/<id>/          one complete artifact: its files plus manifest.json
    tmp/<id>.<pid>.<rand>/ a stage still writing (or killed while writing); never read
    locks/<id>.lock        one writer per id at a time
    scratch/<id>/          resumable state of a long stage (checkpoints); removed once published

A directory appears under ``objects/`` only by an atomic rename after its manifest is written,
so a killed stage never leaves something that looks complete. Reading checks every file against
the manifest; a missing or altered file makes the artifact invalid and the stage runs again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from artifacts.errors import ArtifactError
from artifacts.identity import _jsonable, artifact_id
from stages.files import locked, sha256_file

MANIFEST = "manifest.json"
STAT_CACHE = ".verified.json"  # stat signatures of the last full hash check; not part of the artifact
STORE_ENV = "LLARA_STORE"
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "deepspeed", "prefect", "polars", "pyarrow")

log = logging.getLogger("llara.artifacts")


class NotCached(Exception):
    """Under ``cached_only``: a stage would have to run (its artifact is not in the store)."""


_CACHED_ONLY: ContextVar[bool] = ContextVar("llara_cached_only", default=False)


@contextmanager
def cached_only() -> Iterator[None]:
    """Within this block ``ArtifactStore.build`` returns cache hits and raises ``NotCached`` otherwise.

    What makes a fully cached ``llara run`` a few lookups: the flow's own code walks the DAG with
    nothing computed (``flows.reproduce.reproduce_cached``).
    """
    token = _CACHED_ONLY.set(True)
    try:
        yield
    finally:
        _CACHED_ONLY.reset(token)


def in_cached_only() -> bool:
    return _CACHED_ONLY.get()


def default_store_root() -> Path:
    return Path(os.environ.get(STORE_ENV, ".llara/store"))


@dataclass(frozen=True)
class Artifact:
    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def stage(self) -> str:
        return str(self.manifest["stage"])

    def file(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise ArtifactError(f"{self.path}: artifact {self.id} ({self.stage}) has no file {name!r}")
        return self.path / name


def _signature(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())


class ArtifactStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_store_root()
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.locks = self.root / "locks"

    def scratch(self, artifact_id_: str) -> Path:
        """A per-id directory that outlives a killed run (checkpoints to resume from)."""
        return self.root / "scratch" / artifact_id_

    # ----- reading -------------------------------------------------------------------------

    def _read_manifest(self, path: Path) -> dict[str, Any]:
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except FileNotFoundError as e:
            raise ArtifactError(f"{path / MANIFEST}: missing") from e
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ArtifactError(f"{path / MANIFEST}: not valid JSON ({e})") from e
        if not isinstance(manifest, dict) or "files" not in manifest or manifest.get("id") != path.name:
            raise ArtifactError(f"{path / MANIFEST}: field 'id'/'files' missing or wrong")
        return manifest

    def problems(self, artifact_id_: str, full: bool = False) -> list[str]:
        """Why an artifact is not valid; empty when it is.

        Every file is hashed unless its stat signature matches the one recorded at the last
        full check, so a cache hit costs a manifest read and a few ``stat`` calls. ``full``
        ignores recorded signatures and rehashes everything.
        """
        path = self.objects / artifact_id_
        try:
            manifest = self._read_manifest(path)
        except ArtifactError as e:
            return [str(e)]
        seen: dict[str, list[int]] = {}
        if not full:
            try:
                seen = json.loads((path / STAT_CACHE).read_text())
            except (OSError, json.JSONDecodeError):
                seen = {}
        found, verified = [], {}
        for name, meta in manifest["files"].items():
            file = path / name
            if not file.is_file():
                found.append(f"{file}: missing")
                continue
            signature = _signature(file)
            if signature[0] != meta["size"]:
                found.append(f"{file}: size {signature[0]} != manifest {meta['size']}")
            elif seen.get(name) == signature or sha256_file(file) == meta["sha256"]:
                verified[name] = signature
            else:
                found.append(f"{file}: sha256 differs from manifest")
        if not found and verified != seen:
            # a read-only store still verifies, just without the shortcut next time
            with contextlib.suppress(OSError):
                (path / STAT_CACHE).write_text(json.dumps(verified))
        return found

    def lookup(self, artifact_id_: str) -> Artifact | None:
        """The artifact if it exists and verifies, else None."""
        path = self.objects / artifact_id_
        if not path.exists():
            return None
        found = self.problems(artifact_id_)
        if found:
            log.warning("artifact %s is invalid and will be recomputed: %s", artifact_id_, found[0])
            return None
        return Artifact(artifact_id_, path, self._read_manifest(path))

    def get(self, artifact_id_: str) -> Artifact:
        artifact = self.lookup(artifact_id_)
        if artifact is None:
            raise ArtifactError(f"{self.objects / artifact_id_}: no valid artifact with id {artifact_id_}")
        return artifact

    def open(self, path_or_id: str | Path) -> Artifact:
        """An artifact named by id or by its directory path (as the CLI prints it), of this store.

        A path into another store is refused: its inputs (its lineage) are in that store, and what
        is made from it belongs there too (``for_inputs`` picks that store for a command).
        """
        root = holding_store(path_or_id)
        if root is None:
            return self.get(str(path_or_id))
        if root.resolve() != self.root.resolve():
            raise ArtifactError(
                f"{path_or_id}: this artifact is in store {root}, not in {self.root}; "
                f"to use it, run the command on its store: --store {root}"
            )
        return self.get(Path(path_or_id).name)

    @classmethod
    def for_inputs(cls, root: str | Path | None, *given: str | Path | None) -> ArtifactStore:
        """The store a command works in: ``root`` (``--store``, ``LLARA_STORE``) when set; else the
        store holding the artifacts given by path (an input is read where it is, with its own
        lineage); else the default. Paths into two stores are refused."""
        holders = {r.resolve(): r for g in given if g is not None and (r := holding_store(g)) is not None}
        if root is not None or not holders:
            return cls(root)
        if len(holders) > 1:
            first, second = sorted(holders.values())[:2]
            raise ArtifactError(
                f"{first}, {second}: the artifacts given are in two stores; a command reads and "
                "writes one: give them from one store (--store names it)"
            )
        return cls(next(iter(holders.values())))

    def __iter__(self) -> Iterator[Artifact]:
        if not self.objects.is_dir():
            return
        for path in sorted(self.objects.iterdir()):
            try:
                yield Artifact(path.name, path, self._read_manifest(path))
            except ArtifactError:
                continue

    def latest(self, stage: str, where: Callable[[Artifact], bool] | None = None) -> Artifact | None:
        """The most recently created valid artifact of a stage that matches ``where``."""
        candidates = [a for a in self if a.stage == stage and (where is None or where(a))]
        for artifact in sorted(candidates, key=lambda a: a.manifest["created"], reverse=True):
            if not self.problems(artifact.id):
                return artifact
        return None

    # ----- writing -------------------------------------------------------------------------

    @contextmanager
    def _lock(self, artifact_id_: str, logger: logging.Logger | logging.LoggerAdapter) -> Iterator[None]:
        def waiting() -> None:
            logger.info("another process is writing artifact %s; waiting for it", artifact_id_)

        with locked(self.locks / f"{artifact_id_}.lock", on_wait=waiting):
            yield

    def build(
        self,
        stage: str,
        config: Any,
        inputs: dict[str, Artifact],
        code: str,
        produce: Callable[[Path], dict[str, Any] | None],
        logger: logging.Logger | logging.LoggerAdapter | None = None,
        refresh: bool = False,
        resumable: bool = False,
    ) -> tuple[Artifact, bool]:
        """Return the artifact for (stage, config, inputs, code), producing it if needed.

        ``produce(out_dir)`` writes the stage's files into a private temporary directory and may
        return extra manifest fields. ``refresh`` recomputes even when a valid artifact exists
        (it is then replaced atomically). Returns ``(artifact, cache_hit)``.

        A ``resumable`` stage keeps checkpoints in ``scratch(id)``. A refresh empties that directory
        and publishing removes it, both while holding the id's lock: a concurrent writer of the same
        id may be resuming from those checkpoints until it lets go of the lock.
        """
        logger = logger or log
        input_ids = {name: a.id for name, a in sorted(inputs.items())}
        aid = artifact_id(stage, config, input_ids, code)
        if not refresh and (hit := self.lookup(aid)) is not None:
            logger.info("cache hit: %s artifact %s at %s", stage, aid, hit.path)
            return hit, True
        if _CACHED_ONLY.get():
            raise NotCached(f"{stage} artifact {aid}")
        from artifacts.probe import check_store_filesystem  # once per root and process

        check_store_filesystem(self.root)
        with self._lock(aid, logger):
            if (
                not refresh and (hit := self.lookup(aid)) is not None
            ):  # a concurrent writer finished it meanwhile
                logger.info("cache hit: %s artifact %s written by another run", stage, aid)
                return hit, True
            logger.info("computing %s artifact %s", stage, aid)
            if resumable:
                if refresh:
                    shutil.rmtree(self.scratch(aid), ignore_errors=True)
                self.scratch(aid).mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(parents=True, exist_ok=True)
            work = self.tmp / f"{aid}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            work.mkdir()
            try:
                start, created = time.perf_counter(), datetime.now(UTC)
                extra = produce(work) or {}
                files = {
                    str(p.relative_to(work)): {"sha256": sha256_file(p), "size": p.stat().st_size}
                    for p in sorted(work.rglob("*"))
                    if p.is_file() and p.name not in (MANIFEST, STAT_CACHE)
                }
                manifest = {
                    "id": aid,
                    "stage": stage,
                    "config": _jsonable(config),
                    "inputs": input_ids,
                    "code_version": code,
                    "files": files,
                    "created": created.isoformat(),
                    "wall_time_s": round(time.perf_counter() - start, 3),
                    "libraries": _library_versions(),
                    **_jsonable(extra),
                }
                (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
                (work / STAT_CACHE).write_text(json.dumps({n: _signature(work / n) for n in files}))
                _fsync_tree(work)
                final = self.objects / aid
                self.objects.mkdir(parents=True, exist_ok=True)
                if final.exists():  # an invalid leftover: move it aside first, rename is atomic
                    stale = self.tmp / f"{aid}.stale.{uuid.uuid4().hex[:8]}"
                    final.rename(stale)
                    shutil.rmtree(stale, ignore_errors=True)
                work.rename(final)
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
            if resumable:
                shutil.rmtree(self.scratch(aid), ignore_errors=True)
        logger.info("published %s artifact %s at %s (%.1f s)", stage, aid, final, manifest["wall_time_s"])
        return Artifact(aid, final, manifest), False

    # ----- housekeeping --------------------------------------------------------------------

    def gc(self, dry_run: bool = False) -> list[Path]:
        """Remove leftovers of killed writers and artifacts that fail a full verification."""
        doomed: list[Path] = []
        if self.tmp.is_dir():
            for work in self.tmp.iterdir():
                parts = work.name.split(".")
                pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
                if pid is None or not _alive(pid):
                    doomed.append(work)
        for artifact_dir in sorted(self.objects.iterdir()) if self.objects.is_dir() else []:
            if self.problems(artifact_dir.name, full=True):
                doomed.append(artifact_dir)
        if not dry_run:
            for path in doomed:
                shutil.rmtree(path, ignore_errors=True)
        return doomed


def holding_store(path: str | Path) -> Path | None:
    """The root of the store whose artifact directory ``path`` is (``<root>/objects/<id>``), else None."""
    path = Path(path)
    if path.is_dir() and (path / MANIFEST).is_file():
        return path.parent.parent
    return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
