"""Published LLaRA numbers, from the project's own copy ``published_results.csv`` beside this file.

Columns: ``source``, ``model``, ``dataset`` (movielens / steam / lastfm), ``valid_ratio``,
``hit_ratio_at_1`` (HitRatio@1 = correct / total under the substring rule; 1.0 ValidRatio for the
conventional recommenders). ``source`` says where a number comes from:

- ``paper_table2``: Table 2 of the LLaRA paper (Liao et al., SIGIR 2024, arXiv 2312.02445); it
  predates the July 2024 curriculum fix of the public code.
- ``repo_readme_2024_07``: the table in the README of the public repository ljy0ustc/LLaRA after
  its July 2024 fix (LLaRA rows only).
- ``reproduction_report``: a third-party reproduction of the same protocol.

Our row names map onto the published ``model`` names with ``published_model`` (e.g. our
``zero-shot`` row is the paper's ``Llama2`` row, run on whatever backbone we evaluated). A variant of
one recommender, ``SASRec (released)`` (the authors' released checkpoint) or ``SASRec (conv)`` (their
architecture, trained by us), is compared with that recommender's published row, and so are the LLaRA
rows built on it (``LLaRA(SASRec, released)`` -> ``LLaRA(SASRec)``).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

PUBLISHED_CSV = Path(__file__).with_name("published_results.csv")
SOURCES = ("paper_table2", "repo_readme_2024_07", "reproduction_report")
SOURCE_LABELS = {
    "paper_table2": "paper Table 2 (arXiv 2312.02445)",
    "repo_readme_2024_07": "ljy0ustc/LLaRA README, after the July 2024 fix",
    "reproduction_report": "third-party reproduction",
}
ROW_ALIASES = {"zero-shot": "Llama2", "llama2": "Llama2", "gpt-4": "GPT-4", "gpt4": "GPT-4"}
# Qualifiers of a recommender row that keep its published counterpart: the authors' checkpoint, their
# architecture. "SASRec (released)" -> "SASRec"; "LLaRA(SASRec, released)" -> "LLaRA(SASRec)".
VARIANTS = ("released", "conv")
_VARIANT = "|".join(VARIANTS)
_SR_VARIANT = re.compile(rf"^(?P<sr>[^()]+?)\s*\((?:{_VARIANT})\)$", re.IGNORECASE)
_LLARA_VARIANT = re.compile(rf"^LLaRA\((?P<sr>[^(),]+?)\s*,\s*(?:{_VARIANT})\)$", re.IGNORECASE)


def load_published(path: Path = PUBLISHED_CSV) -> pl.DataFrame:
    """The published table (source, model, dataset, valid_ratio, hit_ratio_at_1)."""
    return pl.read_csv(path, schema_overrides={"valid_ratio": pl.Float64, "hit_ratio_at_1": pl.Float64})


def canonical_dataset(name: str) -> str:
    """Map our dataset names onto the published ones: movielens, steam, lastfm (else unchanged, lower)."""
    low = name.lower()
    if "movie" in low or low.startswith("ml"):
        return "movielens"
    if "steam" in low:
        return "steam"
    if "lastfm" in low or "last.fm" in low or "last-fm" in low:
        return "lastfm"
    return low


def published_model(row: str) -> str:
    """Our row name as a published model name: aliases, variants (``SASRec (released)`` -> ``SASRec``),
    then ``LLaRA (SASRec)`` -> ``LLaRA(SASRec)``."""
    base = row.split(" [")[0].strip()
    if base.lower().startswith("zero-shot"):
        return "Llama2"
    if base.lower() in ROW_ALIASES:
        return ROW_ALIASES[base.lower()]
    base = re.sub(r"\s+\(", "(", base)
    if match := _LLARA_VARIANT.match(base):
        return f"LLaRA({match['sr'].strip()})"
    if match := _SR_VARIANT.match(base):
        return match["sr"].strip()
    return base


def published_wide(published: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per (dataset, model) with ``hr1_<source>`` and ``valid_<source>`` columns."""
    pub = load_published() if published is None else published
    hr = pub.pivot(on="source", index=["dataset", "model"], values="hit_ratio_at_1")
    valid = pub.pivot(on="source", index=["dataset", "model"], values="valid_ratio")
    hr = hr.rename({s: f"hr1_{s}" for s in SOURCES if s in hr.columns})
    valid = valid.rename({s: f"valid_{s}" for s in SOURCES if s in valid.columns})
    wide = hr.join(valid, on=["dataset", "model"], how="full", coalesce=True)
    for s in SOURCES:
        for prefix in ("hr1_", "valid_"):
            if f"{prefix}{s}" not in wide.columns:
                wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(f"{prefix}{s}"))
    return wide
