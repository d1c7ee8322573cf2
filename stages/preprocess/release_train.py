"""A released split without its train file (MovieLens): the released val/test rows exactly, train
rows rebuilt from the raw interactions of every other user.

The released MovieLens rows store ``(item, rating)`` pairs and no user ids. Each val/test row's
user is found in the raw data (``train_from``, e.g. ``bundled:movielens-100k``) as the one raw user
whose interactions contain every ``(item, rating)`` pair of the row (history and target); a row
that matches no user, or several, or a user another row already took, is a one-line error. The
train rows are our protocol (every prefix, the last ``max_history`` items, ``min_history`` filter,
time order with ties by file position) over all the other users. Item ids are the release's:
raw movie id - 1 (PROVENANCE.md), checked against the release's ``u.item``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from stages.errors import DataError
from stages.preprocess.build import collect, item_table
from stages.preprocess.config import PrepareConfig, parse_source
from stages.preprocess.protocol import Rows, sequence_rows
from stages.preprocess.readers import require_file
from stages.preprocess.sources import read_raw

HELD_OUT = {"val": "Val_data.df", "test": "Test_data.df"}


def _pairs(x: object, path: Path, field: str, row: int) -> tuple[int, int] | None:
    """One released ``(item, rating)`` entry as ints (None for a bare padding id)."""
    if not isinstance(x, tuple | list) or len(x) != 2:
        return None
    try:
        return int(x[0]), int(x[1])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(path, field, f"row {row}: {x!r} is not an (item, rating) pair") from None


Pair = tuple[int, int]


def _released_pairs(path: Path, pad: int, min_history: int) -> list[tuple[list[Pair], Pair]]:
    """(history pairs without padding, target pair) per released row kept by the len_seq filter."""
    import pandas as pd

    require_file(path)
    try:
        df = pd.read_pickle(path)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is bad user data
        raise DataError(path, None, f"cannot unpickle ({type(e).__name__}: {str(e)[:100]})") from None
    for col in ("seq", "len_seq", "next"):
        if col not in getattr(df, "columns", []):
            raise DataError(path, col, "missing column")
    out = []
    for r, (seq, n, nxt) in enumerate(zip(df["seq"], df["len_seq"], df["next"], strict=True)):
        if int(n) < min_history:
            continue
        hist = [p for p in (_pairs(x, path, "seq", r) for x in seq) if p is not None and p[0] != pad]
        target = _pairs(nxt, path, "next", r)
        if target is None:
            raise DataError(path, "next", f"row {r}: expected an (item, rating) pair (is this MovieLens?)")
        out.append((hist, target))
    return out


def _raw_interactions(config: PrepareConfig, n_items: int) -> tuple[pl.DataFrame, str]:
    """Raw ``user, item (release id), rating, timestamp, row`` of the ``train_from`` source."""
    assert config.train_from is not None
    raw = read_raw(parse_source(config.train_from))
    if "rating" not in raw.interactions.collect_schema().names():
        raise DataError(raw.inter_file, "rating", "the train source needs ratings to identify the users")
    items, numeric = item_table(raw)
    if not numeric or items["key"].min() < 1 or items["key"].max() > n_items:
        raise DataError(raw.items_file, raw.items_key_field, f"item ids must be movie ids 1..{n_items}, as "
                        "the released ids are movie id - 1")
    lf = raw.typed if raw.typed is not None else raw.interactions
    df = collect(lf.select(
        "user", item=pl.col("key").cast(pl.Int64) - 1, rating=pl.col("rating").cast(pl.Int64),
        timestamp=pl.col("timestamp").cast(pl.Int64), row=pl.col("row").cast(pl.Int64),
    ), raw.inter_file)
    return df, raw.inter_file


def _identify(rows: list, split: str, path: Path, owner: dict[tuple[int, int], set], taken: dict) -> list:
    users = []
    for r, (hist, target) in enumerate(rows):
        found: set | None = None
        for pair in (*hist, target):
            found = set(owner.get(pair, set())) if found is None else found & owner.get(pair, set())
        if not found or len(found) != 1:
            n = len(found or ())
            raise DataError(path, "seq", f"{split} row {r}: {n} raw users have all its (item, rating) "
                            "pairs; it must be exactly one")
        user = next(iter(found))
        if user in taken:
            raise DataError(path, "seq", f"{split} row {r}: its user is also {taken[user]}")
        taken[user] = f"{split} row {r}"
        users.append(user)
    return users


def release_with_train(d: Path, config: PrepareConfig, n_items: int) -> tuple[pl.DataFrame, int, str]:
    """(examples: split, user_id, history, target; number of users; the raw interaction file)."""
    held = {s: _released_pairs(d / f, n_items, config.min_history) for s, f in HELD_OUT.items()}
    raw, inter_file = _raw_interactions(config, n_items)
    owner: dict[tuple[int, int], set] = {}
    for user, item, rating in zip(raw["user"], raw["item"], raw["rating"], strict=True):
        owner.setdefault((item, rating), set()).add(user)
    taken: dict = {}
    held_users = {s: _identify(rows, s, d / HELD_OUT[s], owner, taken) for s, rows in held.items()}

    # user ids: raw users in id order, 0.. (as the raw builds number them)
    all_users = np.unique(raw["user"].to_numpy())
    uid = {int(u): i for i, u in enumerate(all_users)}
    train = raw.filter(~pl.col("user").is_in(list(taken)))
    if config.min_rating is not None:
        train = train.filter(pl.col("rating") >= config.min_rating)
    train = train.sort("user", "timestamp", "row")  # ties in time by position in the file
    user_ids = np.asarray([uid[int(u)] for u in train["user"]], dtype=np.int32)
    every_train = np.zeros(len(all_users), dtype=np.int8)  # held-out users are already filtered out
    rows = sequence_rows(user_ids, train["item"].to_numpy().astype(np.int32), every_train,
                         config.max_history, config.min_history)["train"]
    frames = [pl.DataFrame({"split": "train", "user_id": rows.user_id,
                            "history": _lists(rows), "target": rows.target})]
    for split, pairs in held.items():
        frames.append(pl.DataFrame({
            "split": split, "user_id": [uid[int(u)] for u in held_users[split]],
            "history": [[i for i, _ in h][-config.max_history:] for h, _ in pairs],
            "target": [t[0] for _, t in pairs],
        }))
    schema = {"split": pl.String, "user_id": pl.Int32, "history": pl.List(pl.Int32), "target": pl.Int32}
    examples = pl.concat([f.cast(schema) for f in frames])  # type: ignore[arg-type]
    bad = examples.filter((pl.col("target") < 0) | (pl.col("target") >= n_items))
    if bad.height:
        raise DataError(inter_file, "item", f"item {bad['target'][0]} has no name in the release")
    return examples, len(all_users), inter_file


def _lists(rows: Rows) -> list[list[int]]:
    v, o = rows.values.tolist(), rows.offsets.tolist()
    return [v[o[i]:o[i + 1]] for i in range(len(rows))]
