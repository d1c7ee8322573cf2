"""Stage ``prepare``: a raw data source -> the prepared-dataset artifact (SPEC §2).

Writes ``items.parquet``, ``interactions.parquet`` (raw sources only), ``examples.parquet``,
``dataset.json`` and ``card.md`` as docs/CONTRIBUTING-STAGES.md specifies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from stages.errors import DataError
from stages.preprocess.build import example_chunks, fingerprint, interactions, item_table, user_splits
from stages.preprocess.config import PrepareConfig, parse_source
from stages.preprocess.output import (
    INTER_SCHEMA,
    ITEMS_SCHEMA,
    ExamplesWriter,
    candidates_sha256,
    card,
    write_json,
    write_table,
)
from stages.preprocess.protocol import draw_candidates
from stages.preprocess.sources import read_raw, source_files
from stages.preprocess.titles import make_titles

NAME = "prepare"
EMPTY_ROWS = {"split": pl.String, "user_id": pl.Int32, "history": pl.List(pl.Int32), "target": pl.Int32}

__all__ = ["NAME", "DataError", "PrepareConfig", "draw_candidates", "run", "source_fingerprint"]


def source_fingerprint(config: PrepareConfig) -> dict:
    """Size and mtime of every raw file the source reads (``None`` for a missing one), so that
    editing the raw data changes the artifact id."""
    return fingerprint(source_files(parse_source(config.source)))


def _with_candidates(
    df: pl.DataFrame, n_items: int, config: PrepareConfig, offset: int
) -> tuple[pl.DataFrame, np.ndarray]:
    """Frozen held-out draw: stream epoch -1 (train epochs are >= 0), row ids val 0.., test after val."""
    if df.height == 0:
        return df, np.zeros((0, config.n_candidates), np.int32)
    try:
        cands = draw_candidates(
            df["history"].to_list(),
            df["target"].to_numpy(),
            n_items,
            n_candidates=config.n_candidates,
            seed=config.seed,
            epoch=-1,
            row_ids=np.arange(offset, offset + df.height),
        )
    except ValueError as e:
        raise DataError(config.source, "n_candidates", str(e)) from None
    return df.with_columns(candidates=pl.Series(cands.tolist(), dtype=pl.List(pl.Int32))), cands


def run(config: PrepareConfig, inputs: dict[str, Path], out_dir: Path) -> dict:
    """Prepare ``config.source`` into ``out_dir``; returns the summary merged into the manifest."""
    del inputs  # the first stage reads user files, not artifacts
    out_dir = Path(out_dir)
    src = parse_source(config.source)
    notes: list[str] = []
    n_interactions = None
    writer_path = out_dir / "examples.parquet"
    if src.kind == "llara-release":
        from stages.preprocess.release import read_release

        assert src.path is not None
        rel = read_release(src.path, config)
        name, domain, items = rel.name, rel.domain, rel.items
        raw_titles, years, raw_ids = (
            items["title"].to_list(),
            items["year"].to_list(),
            items["raw_id"].to_list(),
        )
        n_items = items.height
        parts = {s: rel.examples.filter(pl.col("split") == s) for s in ("train", "val", "test")}
        n_users = rel.examples["user_id"].n_unique()
        notes.append(
            "Imported from the LLaRA authors' released splits (pickled pandas; unpickled because "
            "allow_pickle was set). Rows are the released rows after the len_seq >= "
            f"{config.min_history} filter; user ids inferred (train rows continuing the previous "
            "row's sequence share a user)."
        )
        train_chunks = iter([("train", parts["train"])])
        heldout = {s: parts[s] for s in ("val", "test")}
        empty_file = rel.names_file
    else:
        raw = read_raw(src)
        name, domain = raw.name, config.domain or raw.domain
        items, numeric = item_table(raw)
        inter = interactions(raw, items, numeric, config)
        n_items, n_interactions = items.height, inter.height
        raw_titles, years, raw_ids = (
            items["title"].to_list(),
            items["year"].to_list(),
            items["raw_id"].to_list(),
        )
        write_table(inter, INTER_SCHEMA, out_dir / "interactions.parquet")
        splits = user_splits(inter, config)
        n_users = splits.height
        notes += raw.notes
        held_chunks = list(example_chunks(inter, splits, config, ("val", "test")))
        heldout = {
            k: pl.concat([c for j, c in held_chunks if j == k] or [pl.DataFrame(schema=EMPTY_ROWS)])
            for k in ("val", "test")
        }
        train_chunks = example_chunks(inter, splits, config, ("train",))  # streamed into the writer
        empty_file = raw.inter_file
    titles = make_titles(raw_titles, raw_ids, mode=config.title_mode, domain=domain, years=years)
    write_table(
        pl.DataFrame({"item_id": items["item_id"], "title": titles, "raw_id": raw_ids}),
        ITEMS_SCHEMA,
        out_dir / "items.parquet",
    )
    counts = {s: heldout[s].height for s in heldout}
    for split in ("val", "test"):
        if counts[split] == 0:
            raise DataError(
                empty_file,
                None,
                f"the {split} split is empty after the history >= {config.min_history} filter",
            )
    held = {"val": _with_candidates(heldout["val"], n_items, config, 0)}
    held["test"] = _with_candidates(heldout["test"], n_items, config, counts["val"])
    writer = ExamplesWriter(writer_path)
    try:
        for _, c in train_chunks:
            writer.write(c)
        counts = {"train": writer.rows["train"], **counts}
        if counts["train"] == 0:
            raise DataError(
                empty_file, None, f"the train split is empty after the history >= {config.min_history} filter"
            )
        for s in ("val", "test"):
            writer.write(held[s][0])
    finally:
        writer.close()
    sha = candidates_sha256([held["val"][1], held["test"][1]])
    meta = {
        "name": name,
        "domain": domain,
        "n_items": n_items,
        "n_users": n_users,
        "splits": counts,
        "seed": config.seed,
        "title_mode": config.title_mode,
        "candidates_sha256": sha,
        "source": config.source,
        "n_interactions": n_interactions,
        "n_candidates": config.n_candidates,
        "max_history": config.max_history,
        "min_history": config.min_history,
        "fractions": [config.train_frac, config.val_frac, round(1 - config.train_frac - config.val_frac, 10)],
        "tie_rule": "timestamp, then position in the source file",
    }
    write_json(out_dir / "dataset.json", meta)
    (out_dir / "card.md").write_text(card(meta, config, notes, titles[:5]), encoding="utf-8")
    return {
        "name": name,
        "domain": domain,
        "n_items": n_items,
        "n_users": n_users,
        "n_interactions": n_interactions,
        "splits": counts,
        "candidates_sha256": sha,
    }
