"""llara-release: the authors' released LastFM splits, imported row for row."""

from __future__ import annotations

import polars as pl
import pytest

from stages.errors import DataError
from tests.stages.preprocess._common import need_release, prepare


def test_lastfm_release_exact(tmp_path):
    pd = pytest.importorskip("pandas")
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
