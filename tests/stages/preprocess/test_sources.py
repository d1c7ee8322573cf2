"""Raw-format readers on small valid files: ml100k, recbole, hetrec-lastfm, steam; fingerprints."""

from __future__ import annotations

import gzip
import os

import polars as pl
import pytest

from stages.errors import DataError
from stages.preprocess import PrepareConfig, source_fingerprint
from tests.stages.preprocess._common import prepare
from tests.stages.preprocess.bad_inputs import write_ml100k, write_recbole


def test_ml100k_dir(tmp_path):
    d = write_ml100k(tmp_path / "ml", n_users=40)
    s, out = prepare(tmp_path, source=f"ml100k:{d}")
    assert s["n_users"] == 40 and s["n_items"] == 40 and s["n_interactions"] == 320
    assert s["splits"] == {"train": 32 * 5, "val": 4, "test": 4}
    titles = pl.read_parquet(out / "items.parquet")["title"].to_list()
    assert titles[0] == "Le Café" and titles[1] == "The Movie 2"
    fp = source_fingerprint(PrepareConfig(source=f"ml100k:{d}"))
    os.utime(d / "u.data", ns=(5, 5))  # the same bytes with a new mtime (a fresh copy): the same id
    assert source_fingerprint(PrepareConfig(source=f"ml100k:{d}")) == fp
    with open(d / "u.data", "a") as f:
        f.write("1\t2\t3\t880000000\n")
    os.utime(d / "u.data", ns=(1, 1))
    assert source_fingerprint(PrepareConfig(source=f"ml100k:{d}")) != fp


def test_recbole(tmp_path):
    d = write_recbole(tmp_path / "rb")
    s, _ = prepare(tmp_path, source=f"recbole:{d}")
    assert s["n_users"] == 30 and s["n_interactions"] == 240 and s["name"] == "toy"
    with pytest.raises(DataError, match="rating filter"):  # every rating is 4
        prepare(tmp_path, source=f"recbole:{d}#toy", min_rating=5)


def test_hetrec_first_tag_time(tmp_path):
    d = tmp_path / "hetrec"
    d.mkdir()
    (d / "artists.dat").write_text(
        "id\tname\turl\tpictureURL\n" + "".join(f"{i}\tBand {i}\tu\tp\n" for i in range(1, 9))
    )
    ua = "userID\tartistID\tweight\n" + "".join(f"{u}\t{a}\t1\n" for u in range(1, 11) for a in range(1, 7))
    (d / "user_artists.dat").write_text(ua)
    tags = ["userID\tartistID\ttagID\ttimestamp"]
    for u in range(1, 11):
        for a in range(1, 9):  # artists 7, 8 are tagged but never listened to: excluded
            tags += [
                f"{u}\t{a}\t1\t{1_000_000 * u + 1000 * a}",
                f"{u}\t{a}\t2\t{1_000_000 * u + 1000 * a - 999}",
            ]
    (d / "user_taggedartists-timestamps.dat").write_text("\n".join(tags) + "\n")
    s, out = prepare(tmp_path, source=f"hetrec-lastfm:{d}", n_candidates=2)
    inter = pl.read_parquet(out / "interactions.parquet")
    assert s["domain"] == "artist" and inter.height == 60 and s["n_items"] == 8
    assert inter["timestamp"][0] == 1_000_000 + 1000 - 999


def test_steam_gz(tmp_path):
    lines = []
    for u in range(20):
        for k in range(6):
            lines.append(
                repr(
                    {
                        "username": f"user{u}",
                        "product_id": str(100 + (u + k) % 9),
                        "date": f"2017-01-{k + 1:02d}",
                        "title": f"Game {(u + k) % 9}",
                    }
                )
            )
    p = tmp_path / "reviews.json.gz"
    p.write_bytes(gzip.compress("\n".join(lines).encode()))
    s, out = prepare(tmp_path, source=f"steam:{p}", n_candidates=3)
    assert s["domain"] == "game" and s["n_users"] == 20 and s["n_items"] == 9
    assert pl.read_parquet(out / "items.parquet")["title"][0] == "Game 0"
