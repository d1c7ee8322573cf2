"""Candidate lists (SPEC §2): the target plus uniform negatives outside the history, shuffled.

Counter-based, so a row's draw depends only on (seed, epoch, row id): the frozen val/test draw of
the prepare stage and the per-epoch train redraw of fine-tuning are the same function. Numpy only,
so it also runs where polars is absent (the GPU machine).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_NEG, _SHUFFLE = 1, 2  # stream purposes


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _row_keys(seed: int, epoch: int, purpose: int, rows: np.ndarray) -> np.ndarray:
    base = np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    with np.errstate(over="ignore"):
        k = _mix(_mix(base + _G) ^ np.uint64(epoch & 0xFFFFFFFFFFFFFFFF))
        k = _mix(k ^ np.uint64(purpose))
        return _mix(k ^ _mix(rows.astype(np.uint64) * _G + _G))


def _stream(keys: np.ndarray, start: int, count: int) -> np.ndarray:
    """Counter-based random uint64s: ``_mix(key + j * G)`` for j in ``[start, start + count)``."""
    j = np.arange(start, start + count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix(keys[:, None] + (j[None, :] + np.uint64(1)) * _G)


def pad_histories(histories: Sequence[Sequence[int]] | np.ndarray, fill: int = -1) -> np.ndarray:
    """Ragged histories -> a (rows, width) int64 matrix padded with ``fill``."""
    if isinstance(histories, np.ndarray) and histories.ndim == 2:
        return histories.astype(np.int64, copy=False)
    lens = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    width = int(lens.max()) if len(lens) else 0
    out = np.full((len(histories), max(width, 1)), fill, dtype=np.int64)
    if width:
        flat = np.fromiter((x for h in histories for x in h), dtype=np.int64, count=int(lens.sum()))
        rows = np.repeat(np.arange(len(histories)), lens)
        cols = np.arange(len(flat)) - np.repeat(np.cumsum(lens) - lens, lens)
        out[rows, cols] = flat
    return out


def draw_candidates(
    histories: Sequence[Sequence[int]] | np.ndarray,
    targets: Sequence[int] | np.ndarray,
    n_items: int,
    *,
    n_candidates: int = 20,
    seed: int = 0,
    epoch: int = 0,
    row_ids: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Candidate lists: each row's target plus ``n_candidates - 1`` distinct items drawn uniformly
    from the items that are neither in the row's history nor the target, in shuffled order.

    Counter-based and vectorised: row r's draw depends only on ``(seed, epoch, row_ids[r])``
    (``row_ids`` defaults to ``0..rows-1``), not on the batch it is drawn in, so stage 2 can redraw
    train candidates per ``(seed, epoch, row)`` in any batching. ``histories`` is a ragged sequence
    or a matrix padded with negative numbers. Returns int32 ``(rows, n_candidates)``.
    About 0.1 s for 50k rows of history 10 on one core.
    """
    hist = pad_histories(histories)
    tgt = np.asarray(targets, dtype=np.int64)
    n = len(tgt)
    need = n_candidates - 1
    rows = np.arange(n, dtype=np.int64) if row_ids is None else np.asarray(row_ids, dtype=np.int64)
    if len(hist) != n or len(rows) != n:
        raise ValueError("histories, targets and row_ids must have the same length")
    if n == 0:
        return np.zeros((0, n_candidates), dtype=np.int32)
    excl = np.concatenate([hist, tgt[:, None]], axis=1)
    if (tgt < 0).any() or (tgt >= n_items).any() or (excl >= n_items).any():
        raise ValueError("item ids must lie in [0, n_items)")
    s = np.sort(excl, axis=1)
    distinct = ((s >= 0) & np.concatenate([np.ones((n, 1), bool), s[:, 1:] != s[:, :-1]], axis=1)).sum(1)
    if (n_items - distinct < need).any():
        raise ValueError(f"a row has fewer than {need} items outside its history and target")
    keys = _row_keys(seed, epoch, _NEG, rows)
    negs = np.empty((n, need), dtype=np.int64)
    todo = np.arange(n)
    k = need + excl.shape[1] + 8
    while len(todo):
        if k > 64 * max(n_items, need + 1):  # nearly exhausted catalogue: exact fallback per row
            for r in todo:
                allowed = np.setdiff1d(np.arange(n_items), excl[r])
                order = np.argsort(_mix(keys[r] ^ allowed.astype(np.uint64)), kind="stable")
                negs[r] = allowed[order[:need]]
            break
        v = (_stream(keys[todo], 0, k) % np.uint64(n_items)).astype(np.int64)
        order = np.argsort(v, axis=1, kind="stable")
        sv = np.take_along_axis(v, order, axis=1)
        dup = np.zeros_like(v, dtype=bool)
        np.put_along_axis(dup, order[:, 1:], sv[:, 1:] == sv[:, :-1], axis=1)
        bad = (v[:, :, None] == excl[todo][:, None, :]).any(axis=2)
        valid = ~dup & ~bad
        cnt = np.cumsum(valid, axis=1)
        ok = cnt[:, -1] >= need
        pick = valid[ok] & (cnt[ok] <= need)
        negs[todo[ok]] = v[ok][pick].reshape(-1, need)
        todo = todo[~ok]
        k *= 2
    cands = np.concatenate([negs, tgt[:, None]], axis=1)
    perm = np.argsort(_stream(_row_keys(seed, epoch, _SHUFFLE, rows), 0, n_candidates), axis=1, kind="stable")
    return np.take_along_axis(cands, perm, axis=1).astype(np.int32)
