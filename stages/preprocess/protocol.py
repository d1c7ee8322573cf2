"""The LLaRA data protocol (SPEC §2): user split, prefix rows, length filter, candidate draws."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from stages.candidates import draw_candidates, pad_histories  # noqa: F401 - part of this module's API

SPLITS = ("train", "val", "test")

def split_users(first_ts: pl.DataFrame, train_frac: float, val_frac: float) -> pl.DataFrame:
    """``first_ts`` has ``user_id``, ``first_ts``; returns ``user_id``, ``split``, ``order``.

    Users sorted by first-interaction time, ties by user id; the first ``int(n * train_frac)`` are
    train users, up to ``int(n * (train_frac + val_frac))`` validation users, the rest test users.
    """
    df = first_ts.sort("first_ts", "user_id")
    n = df.height
    a, b = int(n * train_frac), int(n * (train_frac + val_frac))
    split = ["train"] * a + ["val"] * (b - a) + ["test"] * (n - b)
    return df.select("user_id").with_columns(
        split=pl.Series(split, dtype=pl.String), order=pl.int_range(0, n, dtype=pl.Int32)
    )


@dataclass
class Rows:
    """Protocol rows as flat arrays (no Python objects per row): row r's history is
    ``values[offsets[r]:offsets[r + 1]]`` (oldest first), its target ``target[r]``."""

    user_id: np.ndarray  # int32
    offsets: np.ndarray  # int64, rows + 1 entries, offsets[0] == 0
    values: np.ndarray  # int32
    target: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.target)

    @staticmethod
    def empty() -> Rows:
        i32 = np.zeros(0, np.int32)
        return Rows(i32, np.zeros(1, np.int64), i32, i32)

    @staticmethod
    def concat(parts: Sequence[Rows]) -> Rows:
        if not parts:
            return Rows.empty()
        if len(parts) == 1:
            return parts[0]
        shift = np.cumsum([0] + [p.offsets[-1] for p in parts[:-1]])
        return Rows(
            np.concatenate([p.user_id for p in parts]),
            np.concatenate([[0]] + [p.offsets[1:] + s for p, s in zip(parts, shift, strict=True)]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.target for p in parts]),
        )

    @staticmethod
    def from_frame(df: pl.DataFrame) -> Rows:
        """From a frame with ``user_id``, ``history`` (list of ints) and ``target``."""
        hist = df["history"].cast(pl.List(pl.Int32)).to_arrow()
        hist = hist.cast(pa.large_list(pa.int32()))
        offsets = np.asarray(hist.offsets, dtype=np.int64)
        return Rows(
            df["user_id"].cast(pl.Int32).to_numpy(),
            offsets - offsets[0],
            np.asarray(hist.flatten(), dtype=np.int32),
            df["target"].cast(pl.Int32).to_numpy(),
        )

    def padded(self, fill: int = -1) -> np.ndarray:
        """Histories as a (rows, longest) int64 matrix padded with ``fill``."""
        lens = np.diff(self.offsets)
        out = np.full((len(self), max(int(lens.max(initial=0)), 1)), fill, dtype=np.int64)
        cols = np.arange(len(self.values)) - np.repeat(self.offsets[:-1], lens)
        out[np.repeat(np.arange(len(self)), lens), cols] = self.values
        return out


def _rows_at(
    user_id: np.ndarray, items: np.ndarray, pos: np.ndarray, first: np.ndarray, max_history: int
) -> Rows:
    """Rows whose targets are ``items[pos]``; ``first[r]`` is the index of that user's first item."""
    start = np.maximum(first, pos - max_history)
    lens = pos - start
    offsets = np.zeros(len(pos) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    idx = np.repeat(start - offsets[:-1], lens) + np.arange(offsets[-1], dtype=np.int64)
    return Rows(user_id[pos], offsets, items[idx], items[pos])


def sequence_rows(
    user_id: np.ndarray, items: np.ndarray, split_of_user: np.ndarray, max_history: int, min_history: int
) -> dict[str, Rows]:
    """Protocol rows of whole users. ``user_id``/``items`` are interactions grouped by user and
    time-ordered within a user; ``split_of_user[u]`` is 0/1/2 for train/val/test. Train: one row per
    position t >= ``min_history``; val/test: the last position only (if t >= ``min_history``).
    History = the last ``max_history`` items before t, oldest first. Rows follow the input order."""
    n = len(user_id)
    bound = np.flatnonzero(user_id[1:] != user_id[:-1]) + 1
    starts = np.concatenate([[0], bound]).astype(np.int64) if n else np.zeros(0, np.int64)
    ends = np.concatenate([bound, [n]]).astype(np.int64) if n else np.zeros(0, np.int64)
    code = split_of_user[user_id[starts]]
    out = {}
    tr = code == 0
    first, cnt = starts[tr], np.maximum(ends[tr] - starts[tr] - min_history, 0)
    before = np.cumsum(cnt) - cnt
    pos = np.repeat(first + min_history - before, cnt) + np.arange(cnt.sum(), dtype=np.int64)
    out["train"] = _rows_at(user_id, items, pos, np.repeat(first, cnt), max_history)
    for c, split in ((1, "val"), (2, "test")):
        keep = (code == c) & (ends - 1 - starts >= min_history)
        out[split] = _rows_at(user_id, items, ends[keep] - 1, starts[keep], max_history)
    return out
