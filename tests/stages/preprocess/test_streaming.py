"""Bounded-memory preparation: partitioned/typed paths give the same bytes as the simple ones."""

from __future__ import annotations

import random

import numpy as np
import pytest

from stages.preprocess import build
from stages.preprocess.protocol import Rows, sequence_rows
from tests.stages.preprocess._common import prepare
from tests.stages.preprocess.bad_inputs import write_ml100k

FILES = ("examples.parquet", "interactions.parquet", "items.parquet", "dataset.json")


@pytest.fixture(scope="module")
def ml_dir(tmp_path_factory):
    return write_ml100k(tmp_path_factory.mktemp("data") / "ml", n_users=200, n_items=60, per_user=12)


def _bytes(out):
    return {f: (out / f).read_bytes() for f in FILES}


@pytest.mark.parametrize("min_rating", [None, 3])
def test_partitions_and_batches_do_not_change_bytes(ml_dir, tmp_path, monkeypatch, min_rating):
    kw = {"source": f"ml100k:{ml_dir}", "min_rating": min_rating}
    s0, out0 = prepare(tmp_path, **kw)
    monkeypatch.setattr(build, "CHUNK_INTERACTIONS", 100)  # ~20 partitions spilled to disk
    monkeypatch.setattr(build, "BATCH_ROWS", 64)
    monkeypatch.setattr(build, "MAX_OPEN_FILES", 3)
    s1, out1 = prepare(tmp_path, **kw)
    assert s0 == s1 and _bytes(out0) == _bytes(out1)
    assert sorted(p.name for p in out1.iterdir()) == sorted([*FILES, "card.md"])  # spill dir removed


def test_typed_scan_matches_string_path(ml_dir, tmp_path, monkeypatch):
    s0, out0 = prepare(tmp_path, source=f"ml100k:{ml_dir}")
    monkeypatch.setattr(build, "_typed", lambda raw, has_rating: None)
    s1, out1 = prepare(tmp_path, source=f"ml100k:{ml_dir}")
    assert s0 == s1 and _bytes(out0) == _bytes(out1)


def test_sequence_rows_match_the_protocol():
    rnd = random.Random(0)
    seqs = {u: [rnd.randrange(50) for _ in range(rnd.randrange(0, 15))] for u in range(40)}
    seqs = {u: s for u, s in seqs.items() if s}
    split = np.array([rnd.randrange(3) for _ in range(40)], np.int8)
    users = np.array([u for u, s in seqs.items() for _ in s], np.int32)
    items = np.array([i for s in seqs.values() for i in s], np.int32)
    got = sequence_rows(users, items, split, max_history=4, min_history=2)
    for code, name in enumerate(("train", "val", "test")):
        want = []
        for u, s in seqs.items():
            if split[u] != code:
                continue
            for t in range(2, len(s)) if code == 0 else [len(s) - 1] if len(s) - 1 >= 2 else []:
                want.append((u, s[max(0, t - 4) : t], s[t]))
        r = got[name]
        rows = [
            (int(r.user_id[k]), r.values[r.offsets[k] : r.offsets[k + 1]].tolist(), int(r.target[k]))
            for k in range(len(r))
        ]
        assert rows == want
        if len(r):
            padded = r.padded()
            assert [list(row[row >= 0]) for row in padded] == [h for _, h, _ in want]
    both = Rows.concat([got["train"], got["val"]])
    assert len(both) == len(got["train"]) + len(got["val"])
    assert both.offsets[-1] == len(both.values)
