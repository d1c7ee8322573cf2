"""The prepared-dataset file contract shared by its writers and readers (docs/CONTRIBUTING-STAGES.md).

Only pyarrow and numpy: ``stages.preprocess`` (which needs polars) streams large datasets into these
schemas, and ``stages.seqrec.data.write_prepared`` writes small ones where polars may be missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from stages.errors import DataError
from stages.inputs import read_json

EXAMPLES_SCHEMA = pa.schema(
    [
        ("split", pa.string()),
        ("user_id", pa.int32()),
        ("history", pa.list_(pa.int32())),
        ("target", pa.int32()),
        ("candidates", pa.list_(pa.int32())),
    ]
)
EXAMPLE_COLUMNS = tuple(EXAMPLES_SCHEMA.names)
ITEMS_SCHEMA = pa.schema([("item_id", pa.int32()), ("title", pa.string()), ("raw_id", pa.string())])


def candidates_sha256(candidates: Iterable[np.ndarray]) -> str:
    """sha256 of the val rows' then the test rows' candidate ids as little-endian int32, in file order."""
    h = hashlib.sha256()
    for c in candidates:
        h.update(np.ascontiguousarray(c, dtype="<i4").tobytes())
    return h.hexdigest()


def read_meta(path: Path, required: Sequence[str] = ("n_items", "domain", "candidates_sha256")) -> dict:
    """``dataset.json`` with the keys a reader needs, or a one-line DataError."""
    return read_json(path, required)


def check_candidates(
    meta: dict, splits: Sequence[str], candidates: Sequence[Any], meta_path: Path, examples_path: Path
) -> None:
    """Check the stored candidates against the ``candidates_sha256`` that ``prepare`` recorded.

    The candidates are the frozen evaluation protocol: a file edited (or re-drawn by other code)
    after prepare would change every metric while the dataset's id stays the same.
    """
    expected = meta.get("candidates_sha256")
    if not isinstance(expected, str):
        raise DataError(meta_path, "candidates_sha256", "missing or not a string")
    rows = []
    for split in ("val", "test"):
        for row, (name, cands) in enumerate(zip(splits, candidates, strict=True)):
            if name == split:
                if cands is None:
                    raise DataError(examples_path, "candidates", f"row {row} ({split}) has no candidates")
                rows.append(np.asarray(cands))
    actual = candidates_sha256(rows)
    if actual != expected:
        raise DataError(
            examples_path,
            "candidates",
            f"sha256 {actual[:16]} differs from candidates_sha256 {expected[:16]} in {Path(meta_path).name}: "
            "the candidates changed after prepare; prepare the dataset again",
        )
