"""Read a prepared-dataset directory into padded id tensors for the sequential recommenders.

Histories are RIGHT-padded to ``max_len`` with the padding id ``n_items`` (real items at positions
0..len-1, oldest first), the same layout as the LLaRA release's ``seq`` column. With right padding a
causal model's state at ``len - 1`` can never see a pad position, so the padding cannot leak.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from stages.contract import (
    EXAMPLE_COLUMNS,
    EXAMPLES_SCHEMA,
    ITEMS_SCHEMA,
    candidates_sha256,
    check_candidates,
    read_meta,
)
from stages.errors import DataError

MAX_LEN = 10  # LLaRA's state_size: the last <= 10 items of the history
N_CANDIDATES = 20


@dataclass(frozen=True)
class Split:
    """One split as tensors. ``candidates`` is None for train rows."""

    user_id: np.ndarray  # (N,) int32
    history: torch.Tensor  # (N, MAX_LEN) int64, right-padded with n_items
    lengths: torch.Tensor  # (N,) int64, 1..MAX_LEN
    target: torch.Tensor  # (N,) int64
    candidates: torch.Tensor | None  # (N, 20) int64 or None

    def __len__(self) -> int:
        return len(self.target)


@dataclass(frozen=True)
class Prepared:
    """A prepared dataset: its metadata, item titles and the three splits."""

    name: str
    n_items: int
    titles: list[str]
    meta: dict
    splits: dict[str, Split]


def _pad(histories: list, n_items: int, file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    out = np.full((len(histories), MAX_LEN), n_items, dtype=np.int64)
    lengths = np.zeros(len(histories), dtype=np.int64)
    for i, h in enumerate(histories):
        if h is None or len(h) == 0:
            raise DataError(file, "history", f"row {i} has an empty history")
        h = h[-MAX_LEN:]  # keep the most recent items when a source gives more than 10
        out[i, : len(h)] = h
        lengths[i] = len(h)
    if out.min() < 0 or (out[lengths[:, None] > np.arange(MAX_LEN)] >= n_items).any():
        raise DataError(file, "history", f"item ids must lie in [0, {n_items})")
    return torch.from_numpy(out), torch.from_numpy(lengths)


def load_prepared(data_dir: Path) -> Prepared:
    """Load ``dataset.json``, ``items.parquet`` and ``examples.parquet``; checks ids and candidates."""
    data_dir = Path(data_dir)
    names = ("dataset.json", "items.parquet", "examples.parquet")
    meta_file, items_file, ex_file = (data_dir / f for f in names)
    for f in (meta_file, items_file, ex_file):
        if not f.exists():
            raise DataError(f, None, "missing from the prepared dataset directory")
    meta = read_meta(meta_file, ("n_items", "candidates_sha256"))
    try:
        n_items = int(meta["n_items"])
    except (TypeError, ValueError):
        raise DataError(meta_file, "n_items", f"{meta['n_items']!r} is not an integer") from None
    items = pq.read_table(items_file).to_pydict()
    order = np.argsort(np.asarray(items["item_id"]))
    if not np.array_equal(np.asarray(items["item_id"])[order], np.arange(n_items)):
        raise DataError(items_file, "item_id", f"ids must be contiguous 0..{n_items - 1}")
    titles = [items["title"][i] for i in order]
    table = pq.read_table(ex_file).to_pydict()
    for column in EXAMPLE_COLUMNS:
        if column not in table:
            raise DataError(ex_file, column, "column missing")
    split_col = np.asarray(table["split"])
    check_candidates(meta, table["split"], table["candidates"], meta_file, ex_file)
    splits: dict[str, Split] = {}
    for name in ("train", "val", "test"):
        idx = np.flatnonzero(split_col == name)
        if len(idx) == 0:
            raise DataError(ex_file, "split", f"no {name!r} rows")
        history, lengths = _pad([table["history"][i] for i in idx], n_items, ex_file)
        target = torch.as_tensor(np.asarray([table["target"][i] for i in idx], dtype=np.int64))
        if target.min() < 0 or target.max() >= n_items:
            raise DataError(ex_file, "target", f"item ids must lie in [0, {n_items})")
        candidates = None
        if name != "train":
            cands = [table["candidates"][i] for i in idx]
            if any(c is None or len(c) != N_CANDIDATES for c in cands):
                raise DataError(ex_file, "candidates", f"{name} rows need exactly {N_CANDIDATES} candidates")
            candidates = torch.as_tensor(np.asarray(cands, dtype=np.int64))
            if not (candidates == target[:, None]).any(dim=1).all():
                raise DataError(ex_file, "candidates", f"a {name} row's candidates miss its target")
        user_id = np.asarray([table["user_id"][i] for i in idx], dtype=np.int32)
        splits[name] = Split(user_id, history, lengths, target, candidates)
    return Prepared(str(meta.get("name", data_dir.name)), n_items, titles, meta, splits)


def write_prepared(root: Path, titles: list[str], rows: dict[str, list], name: str = "custom",
                   domain: str = "movie", seed: int = 0) -> Path:
    """Write a small prepared dataset from Python lists: the inverse of :func:`load_prepared`.

    ``titles[i]`` is item ``i``'s title. ``rows`` maps each column of ``EXAMPLE_COLUMNS`` to one list
    (train rows have ``candidates`` None). Meant for synthetic and hand-made data (tests, benchmarks,
    a custom split); ``prepare`` builds a dataset from raw interactions and streams larger ones."""
    root = Path(root)
    if set(rows) != set(EXAMPLE_COLUMNS):
        raise ValueError(f"rows needs exactly the columns {EXAMPLE_COLUMNS}, got {sorted(rows)}")
    root.mkdir(parents=True, exist_ok=True)
    items = [list(range(len(titles))), titles, [str(i) for i in range(len(titles))]]
    pq.write_table(pa.table(items, schema=ITEMS_SCHEMA), root / "items.parquet")
    examples = pa.table([rows[c] for c in EXAMPLE_COLUMNS], schema=EXAMPLES_SCHEMA)
    pq.write_table(examples, root / "examples.parquet")
    sha = candidates_sha256(c for split in ("val", "test")
                            for sp, c in zip(rows["split"], rows["candidates"], strict=True) if sp == split)
    meta = {"name": name, "domain": domain, "n_items": len(titles), "n_users": len(set(rows["user_id"])),
            "splits": {s: rows["split"].count(s) for s in ("train", "val", "test")}, "seed": seed,
            "title_mode": "clean", "candidates_sha256": sha}
    (root / "dataset.json").write_text(json.dumps(meta, indent=2))
    return root
