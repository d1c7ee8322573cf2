"""Readers shared by the raw sources and the authors' released splits: checked file reads, the
MovieLens ``u.item`` table, and :class:`Raw`, what a raw-source reader returns.

``sources``, ``steam`` and ``release`` all import this module and none of them imports another's
readers, so the package has no import circle.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from stages.errors import DataError


@dataclass
class Raw:
    name: str
    domain: str
    items: pl.DataFrame
    """``key`` (raw id), ``title`` (raw title, may be null), ``year`` (str or null)."""
    items_file: str
    items_key_field: str
    interactions: pl.LazyFrame
    """``user``, ``key``, ``timestamp``, ``row`` and optionally ``rating``."""
    inter_file: str
    fields: dict[str, str]
    """Our column name -> the field name in the user's file (for error messages)."""
    timestamp_unit: str = "s"
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    typed: pl.LazyFrame | None = None
    """Optional: the same columns scanned with integer ids and numeric timestamp/rating. Used when
    it parses and passes the checks (no strings materialised); otherwise ``interactions`` is."""


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise DataError(path, None, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, None, "empty file")
    return path


def read_text(path: Path, encoding: str = "utf-8") -> str:
    data = require_file(path).read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(path, None, f"corrupt gzip file ({e})") from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise DataError(
            path, None, f"not valid UTF-8 at byte {e.start} (is it latin-1? re-encode it as UTF-8)"
        ) from None


def read_uitem(path: Path) -> pl.DataFrame:
    """MovieLens ``u.item``: ``id|title|release date|...``, ISO-8859-1 by definition."""
    keys, titles, years = [], [], []
    text = require_file(path).read_bytes().decode("latin-1")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < 2:
            raise DataError(path, "movie title", f"line {n}: expected 'id|title|...' fields")
        keys.append(parts[0].strip())
        titles.append(parts[1])
        date = parts[2].strip() if len(parts) > 2 else ""
        years.append(date[-4:] if len(date) >= 4 and date[-4:].isdigit() else None)
    return pl.DataFrame(
        {"key": keys, "title": titles, "year": years},
        schema={"key": pl.String, "title": pl.String, "year": pl.String},
    )
