"""The LLaRA authors' released splits (pickled pandas DataFrames), imported row for row.

Files: ``train_data.df``, ``Val_data.df``, ``Test_data.df`` (columns ``seq`` = 10 ids right-padded
with the padding id, ``len_seq``, ``next``; MovieLens stores ``(item, rating)`` tuples) and names
in ``id2name.txt`` (``id::name``) or MovieLens ``u.item`` (id = first field - 1, ISO-8859-1).

Unpickling runs code, so :func:`read_release` refuses unless the caller passed ``allow_pickle``.
The released rows carry no user ids: a train row continues the previous row's user when its
history equals the previous history plus the previous target (last ``max_history`` kept);
validation/test rows are one user each. The ``len_seq >= min_history`` filter of the public code
is applied (on ``len_seq``) after that inference; histories are ``seq`` without padding ids, as
the public ``remove_padding`` does (its first row per user says ``len_seq`` 1 for an all-padding
``seq``). The padding id is the item count. Item ids are the released ids as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from stages.errors import DataError
from stages.preprocess.config import PrepareConfig
from stages.preprocess.readers import read_text, read_uitem, require_file

SPLIT_FILES = {"train": "train_data.df", "val": "Val_data.df", "test": "Test_data.df"}


@dataclass
class Release:
    name: str
    domain: str
    items: pl.DataFrame  # item_id int32, raw title, year, raw_id
    names_file: str
    examples: pl.DataFrame  # split, user_id, history, target
    n_users: int


def names_file(d: Path) -> Path:
    for n in ("id2name.txt", "u.item"):
        if (d / n).is_file():
            return d / n
    return d / "id2name.txt"


def release_files(d: Path) -> list[Path]:
    return [d / f for f in SPLIT_FILES.values()] + [names_file(d)]


def _names(path: Path) -> pl.DataFrame:
    if path.name == "u.item":
        it = read_uitem(path)
        ids = it["key"].cast(pl.Int64, strict=False)
        if ids.null_count():
            raise DataError(path, "movie id", "non-integer movie id")
        return pl.DataFrame({"id": ids - 1, "title": it["title"], "year": it["year"]})
    ids, titles = [], []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) < 2 or not parts[0].strip().lstrip("-").isdigit():
            raise DataError(path, "id", f"line {n}: expected 'id::name'")
        ids.append(int(parts[0]))
        titles.append("::".join(parts[1:]))
    if not ids:
        raise DataError(path, None, "no names")
    return pl.DataFrame(
        {"id": ids, "title": titles, "year": [None] * len(ids)},
        schema={"id": pl.Int64, "title": pl.String, "year": pl.String},
    )


def _domain(d: Path, names: Path, config: PrepareConfig) -> str:
    if config.domain:
        return config.domain
    if names.name == "u.item":
        return "movie"
    low = str(d.resolve()).lower()
    for hint, dom in (
        ("lastfm", "artist"),
        ("music", "artist"),
        ("steam", "game"),
        ("game", "game"),
        ("movie", "movie"),
        ("ml-", "movie"),
    ):
        if hint in low:
            return dom
    raise DataError(
        d, "domain", "cannot infer the domain from the folder name; set domain (movie/artist/game)"
    )


def _unpickle(path: Path, pad: int) -> list[tuple[list[int], int, int]]:
    """(history without padding ids, target, len_seq) per row, like the public ``remove_padding``."""
    import pandas as pd

    require_file(path)
    try:
        df = pd.read_pickle(path)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is bad user data
        raise DataError(path, None, f"cannot unpickle ({type(e).__name__}: {str(e)[:100]})") from None
    if not isinstance(df, pd.DataFrame):
        raise DataError(path, None, f"expected a pandas DataFrame, got {type(df).__name__}")
    for col in ("seq", "len_seq", "next"):
        if col not in df.columns:
            raise DataError(path, col, f"missing column (file has {', '.join(map(str, df.columns))})")

    def item(x: object, field: str, row: int) -> int:
        if isinstance(x, tuple | list):
            x = x[0] if x else None
        try:
            return int(x)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DataError(path, field, f"row {row}: {x!r} is not an item id") from None

    rows = []
    for r, (seq, n, nxt) in enumerate(zip(df["seq"], df["len_seq"], df["next"], strict=True)):
        try:
            n = int(n)
            seq = list(seq)
        except (TypeError, ValueError):
            raise DataError(path, "len_seq", f"row {r}: bad len_seq/seq") from None
        if not 0 <= n <= len(seq):
            raise DataError(path, "len_seq", f"row {r}: len_seq {n} outside 0..{len(seq)}")
        hist = [i for i in (item(x, "seq", r) for x in seq) if i != pad]
        rows.append((hist, item(nxt, "next", r), n))
    return rows


def read_release(d: Path, config: PrepareConfig) -> Release:
    if not config.allow_pickle:
        raise DataError(
            d,
            "allow_pickle",
            "llara-release sources are pickled pandas files and unpickling "
            "runs arbitrary code; pass allow_pickle (--allow-pickle) only for files you trust",
        )
    if not d.is_dir():
        raise DataError(d, None, "folder not found")
    nf = names_file(d)
    names = _names(require_file(nf))
    dup = names.filter(pl.col("id").is_duplicated())
    if dup.height:
        raise DataError(nf, "id", f"duplicate item id {dup['id'][0]}")
    if (names["id"] < 0).any():
        raise DataError(nf, "id", "negative item id")
    n_items = int(names["id"].max()) + 1
    full = pl.DataFrame({"id": range(n_items)}, schema={"id": pl.Int64}).join(names, on="id", how="left")
    items = full.select(
        item_id=pl.col("id").cast(pl.Int32), title="title", year="year", raw_id=pl.col("id").cast(pl.String)
    )
    if config.train_from:
        from stages.preprocess.release_train import release_with_train

        examples, n_users, _ = release_with_train(d, config, n_items)
        return Release(d.name, _domain(d, nf, config), items, str(nf), examples, n_users)
    frames, next_user = [], 0
    for split, fname in SPLIT_FILES.items():
        path = d / fname
        if not path.is_file():
            extra = (
                " (this release has no train split; rebuild it from the raw data with --train-from SOURCE)"
                if split == "train" else ""
            )
            raise DataError(path, None, "file not found" + extra)
        rows = _unpickle(path, n_items)
        users = []
        prev: list[int] | None = None
        for hist, tgt, _ in rows:
            cont = split == "train" and prev is not None and hist == prev
            if not cont:
                next_user += 1
            users.append(next_user - 1)
            prev = (hist + [tgt])[-config.max_history :]
            for x in (*hist, tgt):
                if not 0 <= x < n_items:
                    raise DataError(
                        path, "seq" if x != tgt else "next", f"item id {x} has no name in {nf.name}"
                    )
        df = pl.DataFrame(
            {
                "user_id": users,
                "history": [h for h, _, _ in rows],
                "target": [t for _, t, _ in rows],
                "len_seq": [n for _, _, n in rows],
            },
            schema={
                "user_id": pl.Int32,
                "history": pl.List(pl.Int32),
                "target": pl.Int32,
                "len_seq": pl.Int64,
            },
        ).filter(pl.col("len_seq") >= config.min_history)
        df = df.with_columns(history=pl.col("history").list.tail(config.max_history))
        frames.append(
            df.select(split=pl.lit(split, pl.String), user_id="user_id", history="history", target="target")
        )
    return Release(d.name, _domain(d, nf, config), items, str(nf), pl.concat(frames), next_user)
