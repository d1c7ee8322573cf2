"""Raw interactions -> validated, id-mapped, time-ordered interactions and protocol rows.

Within a user, interactions are ordered by (timestamp, position in the source file): a stable
sort on time. On MovieLens-100K this rule agreed with the released LLaRA validation/test targets
at least as well as the alternatives tried (timestamp then item id, reversed orders); see card.md.

Memory stays bounded by the chunk sizes, not the data size: the interaction file is only ever
scanned (polars streaming engine) for the checks and the per-user table, then split once into
on-disk partitions of whole users (about ``CHUNK_INTERACTIONS`` interactions each, users in id
order); each partition is sorted, appended to ``interactions.parquet`` and turned into protocol
rows with numpy (no Python object per row or item) before the next one is read.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from stages.errors import DataError
from stages.files import sha256_file
from stages.preprocess.config import PrepareConfig
from stages.preprocess.output import INTER_GROUP_ROWS, INTER_SCHEMA, RowGroupWriter
from stages.preprocess.protocol import Rows, sequence_rows, split_users
from stages.preprocess.readers import Raw

CHUNK_INTERACTIONS = 250_000
"""Interactions per partition (whole users, so a partition may hold one longer user)."""
BATCH_ROWS = 1 << 18
"""Rows per batch when splitting the interactions into partitions."""
MAX_OPEN_FILES = 256
"""Partition files kept open at once while splitting."""
CSV_CHUNK_BYTES = 1 << 20
"""Read size of polars' streaming CSV reader (see :func:`small_csv_chunks`)."""
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_SPILL = np.dtype([("user_id", "<i4"), ("item_id", "<i4"), ("timestamp", "<i8"), ("row", "<i8")])


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


@contextmanager
def small_csv_chunks() -> Iterator[None]:
    """Have polars' streaming CSV reader read ``CSV_CHUNK_BYTES`` at a time. By default it reads
    ahead in large chunks (about 250 MB resident while scanning a 220 MB file, though flat beyond
    that); ``POLARS_CSV_CHUNK_SIZE`` (bytes, read when a scan starts; polars 2.x) brings a scan to
    under 100 MB and is faster. A value the user set wins; a polars that ignores it only costs
    memory, never results."""
    key = "POLARS_CSV_CHUNK_SIZE"
    if key in os.environ:
        yield
        return
    os.environ[key] = str(CSV_CHUNK_BYTES)
    try:
        yield
    finally:
        os.environ.pop(key, None)


def collect(lf: pl.LazyFrame, file: str, streaming: bool = True) -> pl.DataFrame:
    """Collect, turning any reader/compute failure into a one-line DataError naming ``file``."""
    try:
        with small_csv_chunks():
            return lf.collect(engine="streaming" if streaming else "auto")
    except DataError:
        raise
    except UnicodeDecodeError:
        raise DataError(file, None, "not valid UTF-8 (is it latin-1? re-encode it as UTF-8)") from None
    except Exception as e:  # noqa: BLE001 - polars/pyarrow/OS errors on user data
        msg = _first_line(e)
        if "utf-8" in msg.lower() or "utf8" in msg.lower():
            msg = "not valid UTF-8 (is it latin-1? re-encode it as UTF-8)"
        raise DataError(file, None, msg) from None


def _int_like(col: pl.Series) -> bool:
    if col.dtype.is_integer():
        return True
    c = col.cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False)
    return c.null_count() == col.null_count()


def item_table(raw: Raw) -> tuple[pl.DataFrame, bool]:
    """Items ordered by raw id (numerically when every raw id is an integer) -> ``item_id``."""
    items = raw.items
    if items.height == 0:
        raise DataError(raw.items_file, None, "no items")
    if items["key"].null_count() or (items["key"].cast(pl.String).str.strip_chars() == "").any():
        raise DataError(raw.items_file, raw.items_key_field, "empty item id")
    numeric = _int_like(items["key"])
    key = pl.col("key").cast(pl.String).str.strip_chars()
    items = items.with_columns(key=key.cast(pl.Int64) if numeric else key)
    dup = items.filter(pl.col("key").is_duplicated())
    if dup.height:
        raise DataError(raw.items_file, raw.items_key_field, f"duplicate item id {dup['key'][0]!r}")
    items = items.sort("key").with_columns(
        item_id=pl.int_range(0, items.height, dtype=pl.Int32), raw_id=pl.col("key").cast(pl.String)
    )
    return items, numeric


def _typed(raw: Raw, has_rating: bool) -> pl.LazyFrame | None:
    """The integer-typed scan, if the file parses with those types and passes every check; None
    sends the caller to the string path, which names the bad field."""
    lf = raw.typed
    if lf is None:
        return None
    schema = lf.collect_schema()
    if not (schema["user"].is_integer() and schema["key"].is_integer() and schema["timestamp"].is_numeric()):
        return None
    ts = pl.col("timestamp").cast(pl.Float64)
    checks = [
        pl.len().alias("n"),
        pl.any_horizontal(pl.col("user", "key", "timestamp").is_null()).sum().alias("null"),
        (ts.is_nan() | (ts < 0)).sum().alias("ts_bad"),
    ]
    if has_rating:
        checks.append(pl.col("rating").is_null().sum().alias("r_bad"))
    try:
        with small_csv_chunks():
            st = lf.select(checks).collect(engine="streaming").row(0, named=True)
    except Exception:  # noqa: BLE001 - a value that does not parse with the integer types
        return None
    if st["n"] == 0 or st["null"] or st["ts_bad"] or st.get("r_bad"):
        return None
    return lf.select(
        user=pl.col("user").cast(pl.Int64),
        key=pl.col("key").cast(pl.Int64),
        timestamp=ts.floor().cast(pl.Int64),
        row=pl.col("row").cast(pl.Int64),
        **({"rating": pl.col("rating").cast(pl.Float64)} if has_rating else {}),
    )


def _from_strings(raw: Raw, numeric_items: bool, has_rating: bool) -> pl.LazyFrame:
    lf, f = raw.interactions, raw.fields
    src = raw.inter_file
    ts = pl.col("timestamp").cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    checks = [
        pl.len().alias("n"),
        pl.col("user").is_null().sum().alias("user_null"),
        pl.col("key").is_null().sum().alias("key_null"),
        pl.col("timestamp").is_null().sum().alias("ts_null"),
        (pl.col("timestamp").is_not_null() & ts.is_null()).sum().alias("ts_bad"),
        ts.is_nan().sum().alias("ts_nan"),
        (ts < 0).sum().alias("ts_neg"),
        (
            pl.col("user").cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False).is_null()
            & pl.col("user").is_not_null()
        )
        .sum()
        .alias("user_str"),
    ]
    if numeric_items:
        checks.append(
            (
                pl.col("key").cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False).is_null()
                & pl.col("key").is_not_null()
            )
            .sum()
            .alias("key_bad")
        )
    if has_rating:
        checks.append(
            (pl.col("rating").cast(pl.String).cast(pl.Float64, strict=False).is_null()).sum().alias("r_bad")
        )
    st = collect(lf.select(checks), src).row(0, named=True)
    if st["n"] == 0:
        raise DataError(src, None, "no interactions")
    for col, what in (("user_null", "user"), ("key_null", "key"), ("ts_null", "timestamp")):
        if st[col]:
            raise DataError(src, f[what], f"{st[col]} missing values")
    if st["ts_bad"]:
        raise DataError(src, f["timestamp"], f"{st['ts_bad']} values are not numbers")
    if st["ts_nan"] or st["ts_neg"]:
        raise DataError(src, f["timestamp"], f"{st['ts_nan']} NaN and {st['ts_neg']} negative timestamps")
    if st.get("key_bad"):
        raise DataError(
            src, f["key"], f"{st['key_bad']} item ids are not integers (items file uses integer ids)"
        )
    if st.get("r_bad"):
        raise DataError(src, f.get("rating", "rating"), f"{st['r_bad']} ratings are missing or not numbers")
    user_numeric = st["user_str"] == 0

    def norm(c: str, numeric: bool) -> pl.Expr:
        e = pl.col(c).cast(pl.String).str.strip_chars()
        return e.cast(pl.Int64) if numeric else e

    return lf.select(
        user=norm("user", user_numeric),
        key=norm("key", numeric_items),
        timestamp=ts.floor().cast(pl.Int64),
        row=pl.col("row").cast(pl.Int64),
        **({"rating": pl.col("rating").cast(pl.String).cast(pl.Float64)} if has_rating else {}),
    )


def validated(raw: Raw, numeric_items: bool, config: PrepareConfig) -> pl.LazyFrame:
    """Lazy ``user, key, timestamp (int64), row (int64)`` after the checks and the rating filter.

    Integer-typed scan first (a streaming pass, no strings); if that fails to parse or any check
    fails, the all-string scan finds the problem and raises a DataError naming file and field."""
    has_rating = "rating" in raw.interactions.collect_schema().names() and config.min_rating is not None
    lf = _typed(raw, has_rating) if numeric_items else None
    if lf is None:
        lf = _from_strings(raw, numeric_items, has_rating)
    if has_rating:
        lf = lf.filter(pl.col("rating") >= config.min_rating).drop("rating")
    return lf


@dataclass
class Interactions:
    """Validated interactions, not yet materialised: ``users`` (one row per user) and a lazy
    ``mapped`` frame of ``user_id, item_id, timestamp, row, part``."""

    users: pl.DataFrame  # user_id, first_ts, n, part, split (split order as SPEC §2)
    mapped: pl.LazyFrame
    n_interactions: int
    src: str

    @property
    def n_users(self) -> int:
        return self.users.height


def interactions(raw: Raw, items: pl.DataFrame, numeric_items: bool, config: PrepareConfig) -> Interactions:
    """Checks and the per-user table (streaming passes; memory ~ users, not interactions).
    ``user_id`` is contiguous in raw-user-id order."""
    src, f = raw.inter_file, raw.fields
    lf = validated(raw, numeric_items, config)
    keys = items.lazy().select("key", "item_id")
    unknown = collect(
        lf.join(keys, on="key", how="anti").select(pl.len().alias("n"), pl.col("key").first()), src
    )
    if unknown["n"][0]:
        raise DataError(
            src,
            f["key"],
            f"{unknown['n'][0]} interactions name items not in {raw.items_file} (e.g. {unknown['key'][0]!r})",
        )
    users = collect(lf.group_by("user").agg(first_ts=pl.col("timestamp").min(), n=pl.len()), src)
    if users.height == 0:
        raise DataError(src, f.get("rating", "rating"), "no interactions left after the rating filter")
    users = users.sort("user").with_columns(user_id=pl.int_range(0, users.height, dtype=pl.Int32))
    users = users.with_columns(
        part=((pl.col("n").cast(pl.Int64).cum_sum() - pl.col("n")) // CHUNK_INTERACTIONS).cast(pl.Int32)
    )
    split = split_users(users.select("user_id", "first_ts"), config.train_frac, config.val_frac)
    users = users.join(split.select("user_id", "split"), on="user_id").sort("user_id")
    mapped = (
        lf.join(keys, on="key")
        .join(users.lazy().select("user", "user_id", "part"), on="user")
        .select("user_id", "item_id", "timestamp", "row", "part")
    )
    return Interactions(users.drop("user"), mapped, int(users["n"].sum()), src)


def _sort(a: np.ndarray) -> np.ndarray:
    """Sort records by (user, timestamp, file position); user and time packed into one key when
    their ranges allow (twice as fast as a three-key lexsort)."""
    if len(a) == 0:
        return a
    u, t = a["user_id"].astype(np.int64), a["timestamp"]
    u0, t0 = int(u.min()), int(t.min())
    t_span = int(t.max()) - t0 + 1
    if (int(u.max()) - u0 + 1) * t_span < 2**62:
        order = np.lexsort((a["row"], (u - u0) * t_span + (t - t0)))
    else:
        order = np.lexsort((a["row"], t, u))
    return a[order]


def _spill(mapped: pl.LazyFrame, paths: list[Path]) -> None:
    """One streaming pass: append each batch's rows to their partition's file (raw ``_SPILL`` records)."""
    handles: dict[int, BinaryIO] = {}
    try:
        for df in mapped.collect_batches(chunk_size=BATCH_ROWS, engine="streaming"):
            part = df["part"].to_numpy()
            order = np.argsort(part, kind="stable")
            a = np.empty(df.height, _SPILL)
            for name in _SPILL.names:
                a[name] = df[name].to_numpy()[order]
            part = part[order]
            cut = np.flatnonzero(part[1:] != part[:-1]) + 1
            for lo, hi in zip(np.concatenate([[0], cut]), np.concatenate([cut, [len(a)]]), strict=True):
                k = int(part[lo])
                if k not in handles:
                    if len(handles) >= MAX_OPEN_FILES:
                        for fh in handles.values():
                            fh.close()
                        handles.clear()
                    handles[k] = open(paths[k], "ab")  # noqa: SIM115 - closed below
                a[lo:hi].tofile(handles[k])
    finally:
        for fh in handles.values():
            fh.close()


def partitions(inter: Interactions, workdir: Path) -> Iterator[np.ndarray]:
    """The interactions, partition by partition (users in id order), each sorted by user, time and
    file position, as a structured array (``_SPILL``). With more than one partition, one streaming
    pass appends every batch's rows to its partition's file under ``workdir``."""
    n_parts = int(inter.users["part"].max()) + 1
    if n_parts == 1:
        df = collect(inter.mapped, inter.src)
        a = np.empty(df.height, _SPILL)
        for name in _SPILL.names:
            a[name] = df[name].to_numpy()
        yield _sort(a)
        return
    paths = [workdir / f"part{k:06d}.bin" for k in range(n_parts)]
    try:
        with small_csv_chunks():
            _spill(inter.mapped, paths)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - polars/OS errors on user data
        raise DataError(inter.src, None, _first_line(e)) from None
    for path in paths:
        if path.exists():
            a = np.fromfile(path, dtype=_SPILL)
            path.unlink()
            yield _sort(a)


def example_parts(inter: Interactions, config: PrepareConfig, out_dir: Path) -> Iterator[tuple[str, Rows]]:
    """Protocol rows, partition by partition (users in id order): ``(split, rows)`` for train, val
    and test rows of each partition. Writes ``interactions.parquet`` as a side effect."""
    split_of_user = (
        inter.users.select(pl.col("split").replace_strict(_SPLIT_CODE, return_dtype=pl.Int8))
        .to_series()
        .to_numpy()
    )
    workdir = Path(tempfile.mkdtemp(prefix=".prepare-spill-", dir=out_dir))
    writer = RowGroupWriter(out_dir / "interactions.parquet", INTER_SCHEMA, INTER_GROUP_ROWS)
    try:
        for a in partitions(inter, workdir):
            writer.write(
                pa.Table.from_arrays(
                    [pa.array(np.ascontiguousarray(a[n])) for n in INTER_SCHEMA.names], schema=INTER_SCHEMA
                )
            )
            rows = sequence_rows(
                np.ascontiguousarray(a["user_id"]),
                np.ascontiguousarray(a["item_id"]),
                split_of_user,
                config.max_history,
                config.min_history,
            )
            del a
            for split in ("train", "val", "test"):
                if len(rows[split]):
                    yield split, rows[split]
    finally:
        writer.close()
        shutil.rmtree(workdir, ignore_errors=True)


def fingerprint(files: list[Path]) -> dict:
    """Size and sha256 of each file (``None`` for a missing one): the bytes, not the mtime, so the
    same data copied afresh to the same path (a re-synced data folder) keeps the artifact id."""
    out = {}
    for p in files:
        try:
            st = p.stat()
            out[str(p)] = {"size": st.st_size, "sha256": _sha256_by_stat(str(p), st.st_size, st.st_mtime_ns)}
        except OSError:
            out[str(p)] = None
    return out


@functools.lru_cache(maxsize=256)
def _sha256_by_stat(path: str, _size: int, _mtime_ns: int) -> str:
    """Hash once per (path, size, mtime) in a process: ``llara run`` fingerprints a source twice."""
    return sha256_file(path)
