"""Steam reviews: one Python-literal dict per line (``ast.literal_eval``; ``.gz`` allowed)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from stages.errors import DataError
from stages.preprocess.readers import Raw, read_text


def read_steam(path: Path) -> Raw:
    text = read_text(path)
    users, keys, stamps, rows = [], [], [], []
    titles: dict[str, str | None] = {}
    user_field = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise DataError(path, None, f"line {n}: not a Python literal dict") from None
        if not isinstance(rec, dict):
            raise DataError(path, None, f"line {n}: not a dict")
        uf = "user_id" if "user_id" in rec else "username"
        user_field = user_field or uf
        for f in (uf, "product_id", "date"):
            if rec.get(f) in (None, ""):
                raise DataError(path, f, f"line {n}: missing value")
        key = str(rec["product_id"])
        try:
            day = datetime.strptime(str(rec["date"]).strip(), "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise DataError(path, "date", f"line {n}: {rec['date']!r} is not a YYYY-MM-DD date") from None
        users.append(str(rec[uf]))
        keys.append(key)
        stamps.append(int(day.timestamp()))
        rows.append(len(rows))
        if titles.get(key) is None:
            titles[key] = rec.get("title") or rec.get("app_name")
    if not rows:
        raise DataError(path, None, "no records")
    items = pl.DataFrame(
        {"key": list(titles), "title": list(titles.values()), "year": [None] * len(titles)},
        schema={"key": pl.String, "title": pl.String, "year": pl.String},
    )
    inter = pl.LazyFrame(
        {"user": users, "key": keys, "timestamp": stamps, "row": rows},
        schema={"user": pl.String, "key": pl.String, "timestamp": pl.Int64, "row": pl.Int64},
    )
    return Raw(
        "steam",
        "game",
        items,
        str(path),
        "product_id",
        inter,
        str(path),
        {"user": user_field or "username", "key": "product_id", "timestamp": "date"},
        timestamp_unit="s (day)",
        files=[path],
        notes=["Timestamps are review dates (day resolution); ties are broken by line order."],
    )
