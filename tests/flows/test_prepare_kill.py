"""kill -9 in the middle of `llara prepare` must leave nothing that passes for an artifact."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from artifacts import ArtifactStore

REPO = Path(__file__).resolve().parents[2]


def write_ml100k(directory: Path, users: int, items: int, rows: int) -> None:
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    user = rng.integers(1, users + 1, rows)
    item = rng.integers(1, items + 1, rows)
    stamp = rng.integers(800_000_000, 900_000_000, rows)
    np.savetxt(directory / "u.data", np.c_[user, item, np.full(rows, 4), stamp], fmt="%d", delimiter="\t")
    lines = [
        f"{i}|Movie {i} (1990)|01-Jan-1990||http://x|" + "|".join(["0"] * 19) for i in range(1, items + 1)
    ]
    (directory / "u.item").write_text("\n".join(lines) + "\n", encoding="latin-1")


def prepare(source: str, store: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LLARA_STORE": str(store)}
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "prepare", source],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stage_work(store: ArtifactStore, pid: int) -> list[Path]:
    """The work directories of process ``pid``'s stage, ``tmp/<id>.<pid>.<hex>``; not the filesystem
    probe's ``tmp/probe.<pid>.<hex>``, which comes first."""
    return [d for d in store.tmp.glob(f"*.{pid}.*") if not d.name.startswith("probe.")]


def written(work: list[Path]) -> bool:
    return any(f.is_file() for d in work for f in d.rglob("*"))


def test_kill_9_during_prepare_then_rerun(tmp_path):
    write_ml100k(tmp_path / "raw", users=20_000, items=3_000, rows=1_500_000)
    store = ArtifactStore(tmp_path / "store")
    victim = prepare(f"ml100k:{tmp_path / 'raw'}", store.root)
    deadline = time.monotonic() + 300
    while not written(stage_work(store, victim.pid)):  # wait until the stage itself has written a file
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL  # killed mid-write, not finished
    (work,) = stage_work(store, victim.pid)
    assert not (work / "manifest.json").exists() and list(store) == []  # nothing passes for an artifact
    rerun = prepare(f"ml100k:{tmp_path / 'raw'}", store.root)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    (artifact,) = list(store)
    assert out.strip().splitlines()[-1] == str(artifact.path)
    assert store.problems(artifact.id, full=True) == []
    assert work in store.gc() and not any(store.tmp.iterdir())  # the dead writer's half-written files
