"""Bundled MovieLens-100K: counts, contract types, determinism, candidates, release agreement."""

from __future__ import annotations

import json

import polars as pl
import pyarrow.parquet as pq
import pytest

from tests.stages.preprocess._common import need_release, prepare


@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    return prepare(tmp_path_factory.mktemp("ml"), source="bundled:movielens-100k")


def test_counts_and_contract(ml):
    summary, out = ml
    assert summary["n_users"] == 943 and summary["n_items"] == 1682 and summary["n_interactions"] == 100_000
    assert summary["splits"]["val"] == 94 and summary["splits"]["test"] == 95
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["domain"] == "movie" and meta["splits"] == summary["splits"]
    assert meta["candidates_sha256"] == summary["candidates_sha256"]
    ex = pq.read_schema(out / "examples.parquet")
    assert str(ex.field("history").type) == "list<element: int32>" and str(ex.field("target").type) == "int32"
    assert str(pq.read_schema(out / "interactions.parquet").field("timestamp").type) == "int64"
    items = pl.read_parquet(out / "items.parquet")
    assert items["item_id"].to_list() == list(range(1682)) and items["raw_id"][0] == "1"
    assert items["title"].n_unique() == 1682 and (items["title"].str.len_chars() > 0).all()
    df = pl.read_parquet(out / "examples.parquet")
    assert df["history"].list.len().min() >= 3 and df["history"].list.len().max() <= 10
    assert df.filter(pl.col("split") == "train")["candidates"].null_count() == summary["splits"]["train"]
    assert df.filter(pl.col("split") != "train").group_by("user_id").len()["len"].max() == 1
    assert (out / "card.md").read_text().count("ties broken") == 1


def test_candidates_properties(ml):
    _, out = ml
    df = pl.read_parquet(out / "examples.parquet").filter(pl.col("split") != "train")
    for hist, tgt, cands in df.select("history", "target", "candidates").iter_rows():
        assert len(cands) == 20 and len(set(cands)) == 20 and tgt in cands
        assert not (set(cands) - {tgt}) & set(hist)
        assert all(0 <= c < 1682 for c in cands)
    assert sum(c.index(t) for t, c in df.select("target", "candidates").iter_rows()) != 0  # shuffled


def test_deterministic_and_seed_sensitive(ml, tmp_path):
    s0, out0 = ml
    s1, out1 = prepare(tmp_path, source="bundled:movielens-100k")
    assert (out0 / "examples.parquet").read_bytes() == (out1 / "examples.parquet").read_bytes()
    assert (out0 / "items.parquet").read_bytes() == (out1 / "items.parquet").read_bytes()
    assert s0["candidates_sha256"] == s1["candidates_sha256"]
    s2, out2 = prepare(tmp_path, source="bundled:movielens-100k", seed=1)
    assert s2["candidates_sha256"] != s0["candidates_sha256"]
    a = pl.read_parquet(out0 / "examples.parquet").filter(pl.col("split") == "test")
    b = pl.read_parquet(out2 / "examples.parquet").filter(pl.col("split") == "test")
    assert a["history"].to_list() == b["history"].to_list() and a["target"].to_list() == b["target"].to_list()
    assert sum(x != y for x, y in zip(a["candidates"].to_list(), b["candidates"].to_list(), strict=True)) > 90


def test_release_target_agreement(ml):
    """Our val/test targets vs the released MovieLens splits (ids there are item - 1, (item, rating) tuples).

    Released rows carry no user: a row is attributed to the one user of our split whose items contain
    its history and target. Measured with the (timestamp, file position) tie rule: 94 of 189 rows agree
    (val 46, test 48; 171 rows attributable). (timestamp, item id) gave 93, reversed orders 93 and 90.
    The release keeps only ratings >= 3, which explains most disagreements (see min_rating).
    """
    import pandas as pd

    d = need_release("movielens")
    _, out = ml
    inter = pl.read_parquet(out / "interactions.parquet")
    owned = {u: set(s) for u, s in inter.group_by("user_id").agg(pl.col("item_id")).iter_rows()}
    ex = pl.read_parquet(out / "examples.parquet")
    agree = total = 0
    for split, fname in (("val", "Val_data.df"), ("test", "Test_data.df")):
        ours = dict(ex.filter(pl.col("split") == split).select("user_id", "target").iter_rows())
        rel = pd.read_pickle(d / fname)
        for seq, n, nxt in zip(rel["seq"], rel["len_seq"], rel["next"], strict=True):
            need = {x[0] for x in seq[:n]} | {nxt[0]}
            users = [u for u in ours if need <= owned[u]]
            total += 1
            agree += len(users) == 1 and ours[users[0]] == nxt[0]
    print(f"released MovieLens val/test target agreement: {agree}/{total}")
    assert total == 189 and agree >= 90


def test_llara_titles_replicate_public_code(tmp_path):
    _, out = prepare(tmp_path, source="bundled:movielens-100k", title_mode="llara")
    t = dict(pl.read_parquet(out / "items.parquet").select("raw_id", "title").iter_rows())
    assert t["1"] == "Toy Story"
    assert t["267"] == ""  # "unknown"[:-7]: a quirk of the public code, kept in llara mode
    assert t["50"] == "Star Wars"
    nutty = [v for v in t.values() if v.startswith("A ") and v.endswith("n")]
    assert nutty  # ", An" caught by ", A": "Professor, An" -> "A Professorn"
