"""The store refuses a filesystem where atomic rename or ``flock`` do not hold, and passes local disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from artifacts import ArtifactError, ArtifactStore, probe


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "_PROBED", set())


def _write(out: Path) -> None:
    (out / "x.txt").write_text("x")


def test_local_disk_passes_the_probe(tmp_path: Path) -> None:
    assert probe.rename_is_atomic(_work(tmp_path)) and probe.flock_excludes(_work(tmp_path, "w2"))
    artifact, hit = ArtifactStore(tmp_path / "store").build("s", {}, {}, "c", _write)
    assert not hit and (artifact.path / "x.txt").is_file()
    assert not list((tmp_path / "store" / "tmp").iterdir())  # the probe cleaned up after itself


def test_a_lock_that_does_not_exclude_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe.fcntl, "flock", lambda *args: None)  # this process's lock is a no-op
    assert not probe.flock_excludes(_work(tmp_path))


@pytest.mark.parametrize("guarantee", ["rename_is_atomic", "flock_excludes"])
def test_a_store_where_a_guarantee_fails_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guarantee: str
) -> None:
    monkeypatch.setattr(probe, guarantee, lambda work: False)
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(ArtifactError) as raised:
        store.build("s", {}, {}, "c", _write)
    message = str(raised.value)
    assert "\n" not in message and str(tmp_path / "store") in message
    assert ("atomic rename" if guarantee == "rename_is_atomic" else "flock") in message
    assert not (tmp_path / "store" / "objects").exists()


def _work(root: Path, name: str = "w") -> Path:
    (root / name).mkdir()
    return root / name
