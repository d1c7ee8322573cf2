"""The prepared-dataset file contract shared by its writers and readers (docs/CONTRIBUTING-STAGES.md).

Only pyarrow and numpy: ``stages.preprocess`` (which needs polars) streams large datasets into these
schemas, and ``stages.seqrec.data.write_prepared`` writes small ones where polars may be missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

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
