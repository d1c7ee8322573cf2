"""Writing the prepared-dataset artifact files (formats: docs/CONTRIBUTING-STAGES.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

EXAMPLES_SCHEMA = pa.schema(
    [
        ("split", pa.string()),
        ("user_id", pa.int32()),
        ("history", pa.list_(pa.int32())),
        ("target", pa.int32()),
        ("candidates", pa.list_(pa.int32())),
    ]
)
ITEMS_SCHEMA = pa.schema([("item_id", pa.int32()), ("title", pa.string()), ("raw_id", pa.string())])
INTER_SCHEMA = pa.schema([("user_id", pa.int32()), ("item_id", pa.int32()), ("timestamp", pa.int64())])
_WRITE = {"compression": "zstd", "compression_level": 3, "use_dictionary": False, "write_statistics": True}


def to_arrow(df: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    table = df.select(schema.names).to_arrow()
    return pa.Table.from_arrays(
        [table.column(n).cast(schema.field(n).type) for n in schema.names], schema=schema
    )


def write_table(df: pl.DataFrame, schema: pa.Schema, path: Path) -> None:
    pq.write_table(to_arrow(df, schema), path, **_WRITE)


class ExamplesWriter:
    """Streams examples.parquet in chunks; the bytes depend only on the rows (fixed settings)."""

    def __init__(self, path: Path) -> None:
        self._w = pq.ParquetWriter(path, EXAMPLES_SCHEMA, **_WRITE)
        self.rows: dict[str, int] = {"train": 0, "val": 0, "test": 0}
        self.users: set[int] = set()

    def write(self, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        if "candidates" not in df.columns:
            df = df.with_columns(candidates=pl.lit(None, pl.List(pl.Int32)))
        for split, n in df.group_by("split").len().iter_rows():
            self.rows[split] += n
        self._w.write_table(to_arrow(df, EXAMPLES_SCHEMA), row_group_size=1 << 20)

    def close(self) -> None:
        self._w.close()


def candidates_sha256(candidates: Iterable[np.ndarray]) -> str:
    """sha256 of the val rows' then the test rows' candidate ids as little-endian int32, in file order."""
    h = hashlib.sha256()
    for c in candidates:
        h.update(np.ascontiguousarray(c, dtype="<i4").tobytes())
    return h.hexdigest()


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def card(meta: dict, config: object, notes: list[str], examples_titles: list[str]) -> str:
    s = meta["splits"]
    lines = [
        f"# Prepared dataset: {meta['name']} ({meta['domain']})",
        "",
        f"Source `{meta['source']}`; {meta['n_items']:,} items, {meta['n_users']:,} users"
        + (f", {meta['n_interactions']:,} interactions" if meta.get("n_interactions") is not None else "")
        + ".",
        "",
        "| split | rows |",
        "|---|---|",
        *(f"| {k} | {s[k]:,} |" for k in ("train", "val", "test")),
        "",
        "## Protocol (LLaRA, SPEC §2)",
        "",
        "- Users are sorted by the time of their first interaction (ties by user id); the first "
        f"{meta['fractions'][0]:.0%} are train users, the next {meta['fractions'][1]:.0%} validation, "
        "the rest test.",
        "- Within a user, interactions are ordered by timestamp, ties broken by their position in the "
        "source file (a stable sort on time).",
        f"- Train rows: every prefix (history = the last <= {meta['max_history']} items before the target). "
        "Validation/test: one row per user, target = the last item.",
        f"- Rows with fewer than {meta['min_history']} history items are dropped in every split.",
        f"- Validation/test candidates: {meta['n_candidates']} = the target + "
        f"{meta['n_candidates'] - 1} uniform draws from the items neither in the history nor the target, "
        f"shuffled; drawn once from seed {meta['seed']} (counter-based per row) and frozen. "
        f"sha256 of the candidate ids: `{meta['candidates_sha256']}`.",
        "- Train rows carry no candidates: stage 2 redraws them per (seed, epoch, row) with "
        "`stages.preprocess.draw_candidates`.",
        f"- Titles: `{meta['title_mode']}` mode"
        + (
            " (the public LLaRA code's rules, quirks included)."
            if meta["title_mode"] == "llara"
            else " (year stripped, articles moved to the front, HTML unescaped, never empty, "
            "duplicates made unique)."
        ),
        *(f"- {n}" for n in notes),
        "",
        "Example titles: " + "; ".join(examples_titles),
        "",
    ]
    return "\n".join(lines)
