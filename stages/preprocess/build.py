"""Raw interactions -> validated, id-mapped, time-ordered interactions and protocol rows.

Within a user, interactions are ordered by (timestamp, position in the source file): a stable
sort on time. On MovieLens-100K this rule agreed with the released LLaRA validation/test targets
at least as well as the alternatives tried (timestamp then item id, reversed orders); see card.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from stages.errors import DataError
from stages.preprocess.config import PrepareConfig
from stages.preprocess.protocol import sequence_rows, split_users
from stages.preprocess.sources import Raw

CHUNK_INTERACTIONS = 2_000_000


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def collect(lf: pl.LazyFrame, file: str, streaming: bool = True) -> pl.DataFrame:
    """Collect, turning any reader/compute failure into a one-line DataError naming ``file``."""
    try:
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


def interactions(raw: Raw, items: pl.DataFrame, numeric_items: bool, config: PrepareConfig) -> pl.DataFrame:
    """Validated interactions ``user_id, item_id, timestamp`` (int32, int32, int64) sorted by user,
    time and file position, with ``user_id`` contiguous in raw-user-id order."""
    lf, f = raw.interactions, raw.fields
    src = raw.inter_file
    names = lf.collect_schema().names()
    has_rating = "rating" in names and config.min_rating is not None
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

    lf = lf.select(
        user=norm("user", user_numeric),
        key=norm("key", numeric_items),
        timestamp=ts.floor().cast(pl.Int64),
        row=pl.col("row").cast(pl.Int64),
        **({"rating": pl.col("rating").cast(pl.String).cast(pl.Float64)} if has_rating else {}),
    )
    if has_rating:
        lf = lf.filter(pl.col("rating") >= config.min_rating).drop("rating")
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
    users = collect(lf.select(pl.col("user").unique()), src).sort("user")
    if users.height == 0:
        raise DataError(src, f.get("rating", "rating"), "no interactions left after the rating filter")
    users = users.with_columns(user_id=pl.int_range(0, users.height, dtype=pl.Int32))
    out = (
        lf.join(keys, on="key")
        .join(users.lazy(), on="user")
        .select("user_id", "item_id", "timestamp", "row")
        .sort("user_id", "timestamp", "row")
        .select("user_id", "item_id", "timestamp")
    )
    return collect(out, src)


def user_splits(inter: pl.DataFrame, config: PrepareConfig) -> pl.DataFrame:
    first = inter.group_by("user_id").agg(first_ts=pl.col("timestamp").min())
    return split_users(first, config.train_frac, config.val_frac)


def example_chunks(
    inter: pl.DataFrame,
    splits: pl.DataFrame,
    config: PrepareConfig,
    which: tuple[str, ...] = ("train", "val", "test"),
) -> Iterator[tuple[str, pl.DataFrame]]:
    """Protocol rows, split by split (train, val, test), users in user-id order, in bounded chunks."""
    bounds = inter.group_by("user_id").agg(n=pl.len()).join(splits, on="user_id").sort("user_id")
    for split in which:
        users = bounds.filter(pl.col("split") == split)
        if users.height == 0:
            continue
        group = (users["n"].cum_sum() // CHUNK_INTERACTIONS).to_list()
        ids = users["user_id"]
        start = 0
        while start < len(group):
            end = start
            while end < len(group) and group[end] == group[start]:
                end += 1
            chunk_ids = ids[start:end]
            part = inter.filter(pl.col("user_id").is_between(chunk_ids.min(), chunk_ids.max()))
            part = part.filter(pl.col("user_id").is_in(chunk_ids.implode()))
            seqs = part.group_by("user_id", maintain_order=True).agg(seq=pl.col("item_id"))
            yield split, sequence_rows(seqs, split, config.max_history, config.min_history)
            start = end


def fingerprint(files: list[Path]) -> dict:
    out = {}
    for p in files:
        try:
            st = p.stat()
            out[str(p)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        except OSError:
            out[str(p)] = None
    return out
