import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artifacts import ArtifactStore, artifact_id
from artifacts.errors import ArtifactError

REPO = Path(__file__).resolve().parents[2]


def write_two_files(out: Path) -> dict:
    (out / "a.txt").write_text("alpha")
    (out / "sub").mkdir()
    (out / "sub" / "b.bin").write_bytes(bytes(range(200)))
    return {"rows": 2}


def test_build_publishes_manifest_and_second_build_is_a_hit(tmp_path):
    store = ArtifactStore(tmp_path)
    art, hit = store.build("demo", {"k": 1}, {}, "v1", write_two_files)
    assert not hit
    assert art.path == tmp_path / "objects" / art.id
    m = art.manifest
    assert m["stage"] == "demo" and m["config"] == {"k": 1} and m["code_version"] == "v1" and m["rows"] == 2
    assert set(m["files"]) == {"a.txt", "sub/b.bin"}
    assert m["files"]["a.txt"]["size"] == 5 and len(m["files"]["a.txt"]["sha256"]) == 64
    assert "python" in m["libraries"] and m["wall_time_s"] >= 0
    calls = []
    again, hit = store.build("demo", {"k": 1}, {}, "v1", lambda out: calls.append(out))
    assert hit and again.id == art.id and calls == []


def test_id_depends_on_stage_config_inputs_and_code():
    base = artifact_id("s", {"a": 1, "b": [1, 2]}, {"data": "x"}, "c")
    assert base == artifact_id("s", {"b": [1, 2], "a": 1}, {"data": "x"}, "c")  # key order is irrelevant
    others = {
        artifact_id("t", {"a": 1, "b": [1, 2]}, {"data": "x"}, "c"),
        artifact_id("s", {"a": 2, "b": [1, 2]}, {"data": "x"}, "c"),
        artifact_id("s", {"a": 1, "b": [1, 2]}, {"data": "y"}, "c"),
        artifact_id("s", {"a": 1, "b": [1, 2]}, {"data": "x"}, "d"),
    }
    assert base not in others and len(others) == 4


@pytest.mark.parametrize("damage", ["delete", "same_size_edit", "truncate", "manifest"])
def test_damaged_artifact_is_invalid_and_recomputed(tmp_path, damage):
    store = ArtifactStore(tmp_path)
    art, _ = store.build("demo", {}, {}, "v1", write_two_files)
    target = art.path / "sub" / "b.bin"
    if damage == "delete":
        target.unlink()
    elif damage == "same_size_edit":
        time.sleep(0.01)  # a later write moves the mtime, so the stat shortcut cannot hide it
        target.write_bytes(bytes(reversed(range(200))))
    elif damage == "truncate":
        target.write_bytes(b"x")
    else:
        (art.path / "manifest.json").write_text("{not json")
    assert store.lookup(art.id) is None
    with pytest.raises(ArtifactError):
        store.get(art.id)
    rebuilt, hit = store.build("demo", {}, {}, "v1", write_two_files)
    assert not hit and rebuilt.id == art.id
    assert store.problems(art.id, full=True) == []


def test_full_verification_catches_edits_that_keep_size_and_mtime(tmp_path):
    store = ArtifactStore(tmp_path)
    art, _ = store.build("demo", {}, {}, "v1", write_two_files)
    target = art.path / "a.txt"
    st = target.stat()
    target.write_text("ALPHA")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.problems(art.id, full=True) == [f"{target}: sha256 differs from manifest"]


def test_failed_stage_publishes_nothing(tmp_path):
    store = ArtifactStore(tmp_path)

    def explode(out: Path) -> None:
        (out / "half.parquet").write_text("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.build("demo", {}, {}, "v1", explode)
    assert list(store) == []
    assert not any((tmp_path / "tmp").iterdir())


def test_refresh_recomputes_a_valid_artifact(tmp_path):
    store = ArtifactStore(tmp_path)
    first, _ = store.build("demo", {}, {}, "v1", write_two_files)
    again, hit = store.build("demo", {}, {}, "v1", write_two_files, refresh=True)
    assert not hit and again.id == first.id and store.problems(first.id, full=True) == []


SLOW_WRITER = """
import sys, time
from pathlib import Path
from artifacts import ArtifactStore

def produce(out: Path):
    with open(sys.argv[2], "a") as log:
        log.write("computed\\n")
    (out / "part1").write_text("x" * 1000)
    time.sleep(float(sys.argv[3]))
    (out / "part2").write_text("y")

art, hit = ArtifactStore(sys.argv[1]).build("slow", {}, {}, "v1", produce)
print("HIT" if hit else "MISS", art.path, flush=True)
"""


def spawn_writer(tmp_path: Path, sleep: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(tmp_path / "store"), str(tmp_path / "log"), str(sleep)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_kill_9_mid_write_leaves_nothing_valid_and_rerun_completes(tmp_path):
    writer = spawn_writer(tmp_path, sleep=30)
    wait_for(tmp_path / "log")
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    store = ArtifactStore(tmp_path / "store")
    assert list(store) == [] and not (store.objects.exists() and any(store.objects.iterdir()))
    leftovers = list(store.tmp.iterdir())
    assert len(leftovers) == 1
    assert store.gc() == leftovers and not any(store.tmp.iterdir())
    rerun = spawn_writer(tmp_path, sleep=0)
    out, _ = rerun.communicate(timeout=60)
    assert rerun.returncode == 0 and out.startswith("MISS")
    (art,) = list(store)
    assert store.problems(art.id, full=True) == []


def test_two_writers_of_one_id_compute_once(tmp_path):
    first = spawn_writer(tmp_path, sleep=2)
    wait_for(tmp_path / "log")
    second = spawn_writer(tmp_path, sleep=2)
    out1, _ = first.communicate(timeout=60)
    out2, _ = second.communicate(timeout=60)
    assert out1.startswith("MISS") and out2.startswith("HIT")
    assert (tmp_path / "log").read_text() == "computed\n"
    assert out1.split()[1] == out2.split()[1]


def test_latest_and_iteration(tmp_path):
    store = ArtifactStore(tmp_path)
    a, _ = store.build("demo", {"n": 1}, {}, "v1", write_two_files)
    time.sleep(0.01)
    b, _ = store.build("demo", {"n": 2}, {}, "v1", write_two_files)
    store.build("other", {}, {"x": a}, "v1", write_two_files)
    assert {x.id for x in store} >= {a.id, b.id}
    assert store.latest("demo").id == b.id
    assert store.latest("demo", where=lambda x: x.manifest["config"]["n"] == 1).id == a.id
    other = store.latest("other")
    assert other.manifest["inputs"] == {"x": a.id}
    assert json.loads((other.path / "manifest.json").read_text())["id"] == other.id
    assert store.open(other.path).id == other.id


def test_refresh_clears_checkpoints_only_while_holding_the_lock(tmp_path):
    import fcntl
    import threading

    store = ArtifactStore(tmp_path)
    first, _ = store.build("demo", {}, {}, "v1", write_two_files, resumable=True)
    assert not store.scratch(first.id).exists()  # removed once published
    checkpoint = store.scratch(first.id) / "step-3.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text("a concurrent writer resumes from this")
    seen: list[bool] = []

    def produce(out: Path) -> dict:
        seen.append(checkpoint.exists())
        return write_two_files(out)

    refresh = threading.Thread(
        target=store.build, args=("demo", {}, {}, "v1", produce), kwargs={"refresh": True, "resumable": True}
    )
    with (store.locks / f"{first.id}.lock").open("a") as writer:  # the concurrent writer holds the lock
        fcntl.flock(writer, fcntl.LOCK_EX)
        refresh.start()
        time.sleep(0.5)
        assert refresh.is_alive() and checkpoint.is_file()
        fcntl.flock(writer, fcntl.LOCK_UN)
    refresh.join(timeout=30)
    assert seen == [False]  # the refresh started from scratch once it held the lock
    assert not store.scratch(first.id).exists() and store.problems(first.id, full=True) == []


def test_cached_only_returns_hits_and_refuses_to_compute(tmp_path) -> None:
    from artifacts import NotCached, cached_only

    store = ArtifactStore(tmp_path / "store")
    write = lambda out: (out / "x.txt").write_text("x") and None  # noqa: E731
    made, _ = store.build("demo", {"a": 1}, {}, "v1", write)
    with cached_only():
        hit, was_hit = store.build("demo", {"a": 1}, {}, "v1", write)
        assert was_hit and hit.id == made.id
        with pytest.raises(NotCached, match="demo artifact"):
            store.build("demo", {"a": 2}, {}, "v1", write)
    assert sorted(p.name for p in store.objects.iterdir()) == [made.id]  # nothing was written
