"""draw_candidates: properties, batching invariance, seed/epoch sensitivity, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from stages.preprocess import draw_candidates
from stages.preprocess.protocol import pad_histories


def _rows(n, n_items=1682, seed=0):
    rng = np.random.default_rng(seed)
    hist = [rng.choice(n_items, size=rng.integers(3, 11), replace=False) for _ in range(n)]
    tgt = [int(rng.choice(np.setdiff1d(np.arange(n_items), h))) for h in hist[:200]] + [
        int(rng.integers(n_items)) for _ in range(max(0, n - 200))
    ]
    return hist, np.array(tgt)


def test_properties_and_uniformity():
    hist, tgt = _rows(200)
    c = draw_candidates(hist, tgt, 1682, seed=3)
    assert c.shape == (200, 20) and c.dtype == np.int32
    for h, t, row in zip(hist, tgt, c, strict=True):
        assert len(set(row)) == 20 and t in row and not set(row) & set(h)
    small = draw_candidates([[0, 1, 2]] * 5000, [3] * 5000, 30, n_candidates=20)
    counts = np.bincount(small.ravel(), minlength=30)
    assert counts[:3].sum() == 0 and counts[3] == 5000
    assert counts[4:].min() > 0.9 * 5000 * 19 / 26 and counts[4:].max() < 1.1 * 5000 * 19 / 26
    assert {tuple(np.flatnonzero(r == 3)) for r in small} == {(i,) for i in range(20)}  # target anywhere
    tiny = draw_candidates([[0, 1, 2]], [3], 23)  # catalogue exactly big enough
    assert sorted(tiny[0]) == list(range(3, 23))
    with pytest.raises(ValueError):
        draw_candidates([[0, 1, 2]], [3], 22)


def test_row_keyed_and_seeded():
    hist, tgt = _rows(1000)
    full = draw_candidates(hist, tgt, 1682, seed=5, epoch=2)
    part = draw_candidates(hist[300:400], tgt[300:400], 1682, seed=5, epoch=2, row_ids=np.arange(300, 400))
    assert (full[300:400] == part).all()
    assert (draw_candidates(pad_histories(hist), tgt, 1682, seed=5, epoch=2) == full).all()
    assert (draw_candidates(hist, tgt, 1682, seed=5, epoch=3) != full).any(axis=1).mean() > 0.99
    assert (draw_candidates(hist, tgt, 1682, seed=6, epoch=2) != full).any(axis=1).mean() > 0.99


def test_fast_enough_for_an_epoch():
    hist, tgt = _rows(50_000, seed=1)
    padded = pad_histories(hist)
    start = time.perf_counter()
    draw_candidates(padded, tgt, 1682, seed=0, epoch=1)
    assert time.perf_counter() - start < 1.5
