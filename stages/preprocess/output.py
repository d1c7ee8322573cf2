"""Writing the prepared-dataset artifact files (formats: docs/CONTRIBUTING-STAGES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from stages.contract import EXAMPLES_SCHEMA, ITEMS_SCHEMA, candidates_sha256  # noqa: F401 (re-exported)
from stages.preprocess.protocol import Rows

INTER_SCHEMA = pa.schema([("user_id", pa.int32()), ("item_id", pa.int32()), ("timestamp", pa.int64())])
EXAMPLE_GROUP_ROWS = 1 << 17
"""Rows per row group of examples.parquet (about 10 MB of train rows)."""
INTER_GROUP_ROWS = 1 << 20
_WRITE = {"compression": "zstd", "compression_level": 3, "use_dictionary": False, "write_statistics": True}


def to_arrow(df: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    table = df.select(schema.names).to_arrow()
    return pa.Table.from_arrays(
        [table.column(n).cast(schema.field(n).type) for n in schema.names], schema=schema
    )


def write_table(df: pl.DataFrame, schema: pa.Schema, path: Path) -> None:
    pq.write_table(to_arrow(df, schema), path, **_WRITE)


class RowGroupWriter:
    """Writes a Parquet file in row groups of exactly ``group_rows`` rows whatever the sizes of the
    tables handed in (so the bytes depend only on the rows); :meth:`flush` ends a row group early.
    Holds at most about one row group in memory."""

    def __init__(self, path: Path, schema: pa.Schema, group_rows: int) -> None:
        self._w = pq.ParquetWriter(path, schema, **_WRITE)
        self.schema, self.group_rows = schema, group_rows
        self._buf: list[pa.Table] = []
        self._n = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._buf.append(table)
        self._n += table.num_rows
        if self._n >= self.group_rows:
            self._emit(final=False)

    def _emit(self, final: bool) -> None:
        if not self._n:
            return
        t = pa.concat_tables(self._buf).combine_chunks() if len(self._buf) > 1 else self._buf[0]
        done = t.num_rows if final else t.num_rows - t.num_rows % self.group_rows
        for start in range(0, done, self.group_rows):
            part = t.slice(start, min(self.group_rows, done - start)).combine_chunks()
            self._w.write_table(part, row_group_size=self.group_rows)
        rest = t.slice(done)
        self._buf, self._n = ([rest] if rest.num_rows else []), rest.num_rows

    def flush(self) -> None:
        self._emit(final=True)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._w.close()


def _list_array(offsets: np.ndarray, values: np.ndarray) -> pa.Array:
    return pa.ListArray.from_arrays(
        pa.array(np.asarray(offsets, dtype=np.int32)), pa.array(np.asarray(values, dtype=np.int32))
    )


def rows_table(split: str, rows: Rows, candidates: np.ndarray | None = None) -> pa.Table:
    """``examples.parquet`` rows of one split; ``candidates`` is (rows, k) or None (train rows)."""
    n = len(rows)
    if candidates is None:
        cands = pa.nulls(n, pa.list_(pa.int32()))
    else:
        k = candidates.shape[1]
        cands = _list_array(np.arange(0, n * k + 1, k), candidates.reshape(-1))
    return pa.Table.from_arrays(
        [
            pa.repeat(pa.scalar(split, pa.string()), n),
            pa.array(np.asarray(rows.user_id, dtype=np.int32)),
            _list_array(rows.offsets, rows.values),
            pa.array(np.asarray(rows.target, dtype=np.int32)),
            cands,
        ],
        schema=EXAMPLES_SCHEMA,
    )


class ExamplesWriter:
    """Streams examples.parquet split by split (each split starts a new row group); the bytes depend
    only on the rows (fixed settings, fixed row-group size)."""

    def __init__(self, path: Path, group_rows: int = EXAMPLE_GROUP_ROWS) -> None:
        self._w = RowGroupWriter(path, EXAMPLES_SCHEMA, group_rows)
        self.rows: dict[str, int] = {"train": 0, "val": 0, "test": 0}
        self._split: str | None = None

    def write(self, split: str, rows: Rows, candidates: np.ndarray | None = None) -> None:
        if len(rows) == 0:
            return
        if split != self._split:
            self._w.flush()
            self._split = split
        self.rows[split] += len(rows)
        self._w.write(rows_table(split, rows, candidates))

    def close(self) -> None:
        self._w.close()


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def card(
    meta: dict,
    config: object,
    notes: list[str],
    examples_titles: list[str],
    released_files: dict[str, str] | None = None,
) -> str:
    """The dataset card. ``released_files`` (split -> file name, plus ``names``) marks rows imported
    from the LLaRA authors' released split files: the card then says where the rows come from
    instead of describing the raw-data protocol, which this stage did not apply to them."""
    s = meta["splits"]
    if released_files is None:
        rows = [
            "## Protocol (LLaRA, SPEC §2)",
            "",
            "- Users are sorted by the time of their first interaction (ties by user id); the first "
            f"{meta['fractions'][0]:.0%} are train users, the next {meta['fractions'][1]:.0%} validation, "
            "the rest test.",
            "- Within a user, interactions are ordered by timestamp, ties broken by their position in the "
            "source file (a stable sort on time).",
            f"- Train rows: every prefix (history = the last <= {meta['max_history']} items before the "
            "target). Validation/test: one row per user, target = the last item.",
            f"- Rows with fewer than {meta['min_history']} history items are dropped in every split.",
        ]
    else:
        split_files = ", ".join(
            f"`{released_files[k]}` ({k})" for k in ("train", "val", "test") if k in released_files
        )
        rows = [
            "## Rows (the LLaRA authors' released splits)",
            "",
            f"- The rows are the authors' released split files, imported row for row: {split_files}"
            + (f"; item names from `{released_files['names']}`" if "names" in released_files else "")
            + (". They are not re-derived from raw interactions here: which users are train, validation "
               "or test users, the time order and the prefix rows are as the authors' code made them."
               if "train" in released_files else
               ". The release has no train file: train rows are rebuilt from raw interactions (below)."),
            f"- Kept: released rows with `len_seq` >= {meta['min_history']} (the public code's filter); "
            f"histories are `seq` without padding ids, at most the last {meta['max_history']}; "
            "targets are `next`.",
        ]
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
        *rows,
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
