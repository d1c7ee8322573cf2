"""Every bad input gives one DataError naming the file and the field; no raw library exception."""

from __future__ import annotations

import shutil

import pytest

from stages.errors import DataError
from stages.preprocess import PrepareConfig, run, sources
from tests.stages.preprocess.bad_inputs import CASES


@pytest.mark.parametrize(("case", "build", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, build, field, tmp_path):
    src, allow = build(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError) as info:
        run(PrepareConfig(source=src, allow_pickle=allow), {}, out)
    err = info.value
    assert (err.field or "") == field
    assert "\n" not in str(err) and str(tmp_path / "data") in err.file


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_bundled_parquet(damage, tmp_path, monkeypatch):
    for f in sources.bundled_files():
        shutil.copy(f, tmp_path / f.name)
    target = tmp_path / sources.BUNDLED_FILES[0]
    data = target.read_bytes()
    target.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"PAR1" + b"x" * 100, "empty": b""}[damage]
    )
    monkeypatch.setattr(sources, "bundled_dir", lambda: tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError) as info:
        run(PrepareConfig(), {}, out)
    assert info.value.file == str(target)


def test_unknown_source_kind(tmp_path):
    with pytest.raises(DataError, match="unknown source"):
        run(PrepareConfig(source="csv:/nowhere"), {}, tmp_path)
