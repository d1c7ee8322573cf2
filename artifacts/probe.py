"""Refuse a store on a filesystem where its two guarantees do not hold.

The store publishes an artifact by renaming a finished directory into ``objects/`` (it must be
atomic: readers see all of it or nothing) and lets one writer per id work at a time with ``flock``
(it must exclude another process, on this host or, on a shared filesystem, on another). Local
filesystems (ext4, xfs, btrfs, tmpfs) and NFSv4 / Lustre / GPFS / CephFS mounted with locking
keep both; NFS mounted ``nolock`` or ``local_lock=flock`` (locks only on one host), SMB/CIFS
without POSIX locks and object-store FUSE mounts (s3fs, gcsfuse: rename is copy + delete) do not.
The probe runs once per store root and process, in ``root/tmp``; a probe on one host cannot see
whether another host's locks are honoured, so docs/distributed.md says which mounts to use.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import uuid
from pathlib import Path

from artifacts.errors import ArtifactError

_PROBED: set[Path] = set()

# A second process tries to take the lock the probe holds; exit 0 means it got it.
_TRY_LOCK = (
    "import fcntl, sys\n"
    "with open(sys.argv[1], 'a') as f:\n"
    "    try:\n"
    "        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "    except BlockingIOError:\n"
    "        sys.exit(3)\n"
)


def filesystem_type(path: Path) -> str:
    """The type of the filesystem ``path`` is on (from /proc/self/mounts), or "unknown"."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return kind
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        under = len(fields) > 2 and (target == fields[1] or target.startswith(fields[1].rstrip("/") + "/"))
        if under and len(fields[1]) > len(best):
            best, kind = fields[1], fields[2]
    return kind


def rename_is_atomic(work: Path) -> bool:
    """A directory renamed within the store appears whole under its new name, the old one gone."""
    source, target = work / "source", work / "target"
    source.mkdir()
    (source / "file").write_text("complete")
    os.rename(source, target)
    return not source.exists() and (target / "file").read_text() == "complete"


def flock_excludes(work: Path) -> bool:
    """While this process holds ``flock`` on a file, another process cannot take it."""
    lock = work / "probe.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            other = subprocess.run([sys.executable, "-c", _TRY_LOCK, str(lock)], timeout=60)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return other.returncode == 3


def check_store_filesystem(root: Path) -> None:
    """Raise ``ArtifactError`` (one line) when the store's rename or lock guarantee fails at ``root``."""
    root = Path(root)
    if root.resolve() in _PROBED:
        return
    work = root / "tmp" / f"probe.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    try:
        failed = [
            name
            for name, holds in (("atomic rename", rename_is_atomic), ("flock", flock_excludes))
            if not holds(work)
        ]
    finally:
        for path in sorted(work.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        work.rmdir()
    if failed:
        raise ArtifactError(
            f"{root}: the artifact store needs {' and '.join(failed)} to hold, and a probe on this "
            f"{filesystem_type(root)} filesystem shows it does not; put the store on a local disk or a "
            "shared filesystem with working locks (docs/distributed.md)"
        )
    _PROBED.add(root.resolve())
