"""Broken datasets for the prepare stage, reusable by CLI-level tests.

``CASES``: ``(case_id, build, expected_field)``; ``build(tmp_dir)`` writes a broken dataset under
``tmp_dir`` and returns ``(source string, allow_pickle)``. ``expected_field`` is the ``field`` of
the :class:`stages.errors.DataError` raised (``""`` when the error concerns the whole file).
"""

from __future__ import annotations

import gzip
import pickle
import random
from collections.abc import Callable
from pathlib import Path


def write_ml100k(d: Path, n_users: int = 30, n_items: int = 40, per_user: int = 8, seed: int = 0) -> Path:
    """A small valid ml100k-format dataset (``u.data`` + latin-1 ``u.item``)."""
    d.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    lines = []
    for u in range(1, n_users + 1):
        t0 = 880000000 + rnd.randrange(100000)
        for k, i in enumerate(rnd.sample(range(1, n_items + 1), per_user)):
            lines.append(f"{u}\t{i}\t{rnd.randint(1, 5)}\t{t0 + 60 * k}")
    (d / "u.data").write_text("\n".join(lines) + "\n")
    items = [
        f"{i}|Movie {i}, The (199{i % 10})|01-Jan-199{i % 10}||http://x|0|1" for i in range(1, n_items + 1)
    ]
    items[0] = "1|Café, Le (1995)|01-Jan-1995||http://x|0|1"
    (d / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    return d


def write_recbole(d: Path, name: str = "toy", n_users: int = 30, n_items: int = 40) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(1)
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(1, n_users + 1):
        for k, i in enumerate(rnd.sample(range(1, n_items + 1), 8)):
            rows.append(f"{u}\t{i}\t4\t{880000000 + 1000 * u + k}.0")
    (d / f"{name}.inter").write_text("\n".join(rows) + "\n")
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token"]
    items += [f"{i}\tFilm {i}\t1995" for i in range(1, n_items + 1)]
    (d / f"{name}.item").write_text("\n".join(items) + "\n", encoding="utf-8")
    return d


def _ml(tmp: Path, **edits: str | bytes | None) -> tuple[str, bool]:
    d = write_ml100k(tmp / "ml")
    for fname, content in edits.items():
        path = d / fname.replace("_", ".")
        if content is None:
            path.unlink()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return f"ml100k:{d}", False


def _append_data(tmp: Path, line: str) -> tuple[str, bool]:
    src, _ = _ml(tmp)
    d = Path(src.split(":", 1)[1])
    with open(d / "u.data", "a") as f:
        f.write(line + "\n")
    return src, False


def _recbole(tmp: Path, inter: str | None = None, item: bytes | None = None) -> tuple[str, bool]:
    d = write_recbole(tmp / "rb")
    if inter is not None:
        (d / "toy.inter").write_text(inter)
    if item is not None:
        (d / "toy.item").write_bytes(item)
    return f"recbole:{d}", False


def _release(tmp: Path, train: bytes | None = None) -> tuple[str, bool]:
    d = tmp / "lastfm"
    d.mkdir(parents=True, exist_ok=True)
    (d / "id2name.txt").write_text("".join(f"{i}::Artist {i}\n" for i in range(30)))
    import pandas as pd

    pad = 30
    df = pd.DataFrame({"seq": [[1, 2, 3] + [pad] * 7], "len_seq": [3], "next": [4]})
    for f in ("train_data.df", "Val_data.df", "Test_data.df"):
        df.to_pickle(d / f)
    if train is not None:
        (d / "train_data.df").write_bytes(train)
    return f"llara-release:{d}", True


def _steam(tmp: Path, text: str) -> tuple[str, bool]:
    tmp.mkdir(parents=True, exist_ok=True)
    p = tmp / "steam.json.gz"
    p.write_bytes(gzip.compress(text.encode()))
    return f"steam:{p}", False


def _hetrec_missing_col(tmp: Path) -> tuple[str, bool]:
    d = tmp / "hetrec"
    d.mkdir(parents=True, exist_ok=True)
    (d / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t51\t13883\n")
    (d / "artists.dat").write_text("id\tname\turl\tpictureURL\n51\tDuran Duran\thttp://x\thttp://y\n")
    (d / "user_taggedartists-timestamps.dat").write_text(
        "userID\tartistID\ttagID\ttime\n2\t51\t13\t1238536800000\n"
    )
    return f"hetrec-lastfm:{d}", False


def _valid_pickle_of_list(tmp: Path) -> tuple[str, bool]:
    return _release(tmp, train=pickle.dumps([1, 2, 3]))


CASES: list[tuple[str, Callable[[Path], tuple[str, bool]], str]] = [
    ("missing-file", lambda t: _ml(t, u_data=None), ""),
    ("empty-file", lambda t: _ml(t, u_data=""), ""),
    ("wrong-type-timestamp", lambda t: _append_data(t, "1\t2\t3\tyesterday"), "timestamp"),
    ("negative-timestamp", lambda t: _append_data(t, "1\t2\t3\t-5"), "timestamp"),
    ("unknown-item", lambda t: _append_data(t, "1\t999\t3\t880000001"), "item id"),
    ("non-integer-item", lambda t: _append_data(t, "1\tabc\t3\t880000001"), "item id"),
    ("duplicate-item-id", lambda t: _ml(t, u_item="1|A (1995)|x\n1|B (1996)|x\n"), "movie id"),
    ("missing-user-field", lambda t: _append_data(t, "\t2\t3\t880000001"), "user id"),
    ("empty-split", lambda t: _ml(t, u_data="1\t1\t3\t880000000\n2\t2\t3\t880000001\n"), ""),
    (
        "recbole-missing-column",
        lambda t: _recbole(t, inter="user_id:token\titem_id:token\trating:float\n1\t1\t4\n"),
        "timestamp",
    ),
    (
        "recbole-nan-timestamp",
        lambda t: _recbole(t, inter="user_id:token\titem_id:token\ttimestamp:float\n1\t1\tnan\n"),
        "timestamp",
    ),
    (
        "recbole-latin1-item-file",
        lambda t: _recbole(t, item="item_id:token\tmovie_title:token_seq\n1\tCaf\xe9\n".encode("latin-1")),
        "",
    ),
    ("pickle-refused", lambda t: (_release(t)[0], False), "allow_pickle"),
    ("truncated-pickle", lambda t: _release(t, train=b"\x80\x04\x95garbage"), ""),
    ("pickle-not-a-dataframe", _valid_pickle_of_list, ""),
    (
        "steam-bad-line",
        lambda t: _steam(t, "{'username': 'a', 'product_id': '1', 'date': '2017-01-01'}\nnot a dict\n"),
        "",
    ),
    ("steam-bad-date", lambda t: _steam(t, "{'username': 'a', 'product_id': '1', 'date': 'soon'}\n"), "date"),
    ("hetrec-renamed-column", _hetrec_missing_col, "timestamp"),
]
