"""Stage ``prepare``: a raw data source -> the prepared-dataset artifact (SPEC §2).

Writes ``items.parquet``, ``interactions.parquet`` (raw sources only), ``examples.parquet``,
``dataset.json`` and ``card.md`` as docs/CONTRIBUTING-STAGES.md specifies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from stages.errors import DataError
from stages.preprocess.build import example_parts, fingerprint, interactions, item_table
from stages.preprocess.config import PrepareConfig, Source, parse_source
from stages.preprocess.output import (
    ITEMS_SCHEMA,
    ExamplesWriter,
    candidates_sha256,
    card,
    write_json,
    write_table,
)
from stages.preprocess.protocol import Rows, draw_candidates
from stages.preprocess.release import release_files
from stages.preprocess.sources import raw_files, read_raw
from stages.preprocess.titles import make_titles

NAME = "prepare"


def source_files(src: Source) -> list[Path]:
    """The raw files a source reads (for the fingerprint); does not check that they exist."""
    return release_files(src.path) if src.kind == "llara-release" else raw_files(src)


def source_fingerprint(config: PrepareConfig) -> dict:
    """Size and sha256 of every raw file the source reads (``None`` for a missing one), so that
    editing the raw data changes the artifact id and copying it unchanged does not."""
    files = source_files(parse_source(config.source))
    if config.train_from:
        files += source_files(parse_source(config.train_from))
    return fingerprint(files)


def _with_candidates(rows: Rows, n_items: int, config: PrepareConfig, offset: int) -> np.ndarray:
    """Frozen held-out draw: stream epoch -1 (train epochs are >= 0), row ids val 0.., test after val."""
    if len(rows) == 0:
        return np.zeros((0, config.n_candidates), np.int32)
    try:
        return draw_candidates(
            rows.padded(),
            rows.target,
            n_items,
            n_candidates=config.n_candidates,
            seed=config.seed,
            epoch=-1,
            row_ids=np.arange(offset, offset + len(rows)),
        )
    except ValueError as e:
        raise DataError(config.source, "n_candidates", str(e)) from None


def run(config: PrepareConfig, inputs: dict[str, Path], out_dir: Path) -> dict:
    """Prepare ``config.source`` into ``out_dir``; returns the summary merged into the manifest.

    Raw sources are streamed: train rows go to ``examples.parquet`` partition by partition while
    only the (one row per user) validation/test rows are kept until the end."""
    del inputs  # the first stage reads user files, not artifacts
    out_dir = Path(out_dir)
    src = parse_source(config.source)
    notes: list[str] = []
    n_interactions = None
    released_files = None
    if src.kind == "llara-release":
        from stages.preprocess.release import SPLIT_FILES, read_release  # pandas only when asked

        assert src.path is not None
        rel = read_release(src.path, config)
        name, domain, items = rel.name, rel.domain, rel.items
        n_users = rel.examples["user_id"].n_unique()
        notes.append(
            "Imported from the LLaRA authors' released splits (pickled pandas; unpickled because "
            "allow_pickle was set). User ids are inferred: a train row continuing the previous row's "
            "sequence shares its user; each validation/test row is its own user."
            if not config.train_from else
            f"Validation/test rows are the LLaRA authors' released rows (pickled pandas; unpickled because "
            f"allow_pickle was set), each one's user identified in {config.train_from} as the only user "
            "with all its (item, rating) pairs. Train rows: the protocol over every other user's "
            f"interactions in {config.train_from}"
            + (f" (ratings >= {config.min_rating})." if config.min_rating is not None else " (all ratings).")
        )
        released_files = {**SPLIT_FILES, "names": Path(rel.names_file).name}
        if config.train_from:
            del released_files["train"]  # rebuilt from the raw data, not released
        parts = iter(
            [
                (s, Rows.from_frame(rel.examples.filter(pl.col("split") == s)))
                for s in ("train", "val", "test")
            ]
        )
        empty_file = rel.names_file
    else:
        raw = read_raw(src)
        name, domain = raw.name, config.domain or raw.domain
        items, numeric = item_table(raw)
        inter = interactions(raw, items, numeric, config)
        n_interactions, n_users = inter.n_interactions, inter.n_users
        notes += raw.notes
        parts = example_parts(inter, config, out_dir)  # also writes interactions.parquet
        empty_file = raw.inter_file
    n_items = items.height
    raw_ids = items["raw_id"].to_list()
    titles = make_titles(
        items["title"].to_list(),
        raw_ids,
        mode=config.title_mode,
        domain=domain,
        years=items["year"].to_list(),
    )
    write_table(
        pl.DataFrame({"item_id": items["item_id"], "title": titles, "raw_id": raw_ids}),
        ITEMS_SCHEMA,
        out_dir / "items.parquet",
    )
    writer = ExamplesWriter(out_dir / "examples.parquet")
    try:
        held: dict[str, list[Rows]] = {"val": [], "test": []}
        for split, rows in parts:
            if split == "train":
                writer.write(split, rows)
            else:
                held[split].append(rows)
        heldout = {s: Rows.concat(held[s]) for s in ("val", "test")}
        counts = {"train": writer.rows["train"], **{s: len(heldout[s]) for s in ("val", "test")}}
        for split in ("val", "test", "train"):
            if counts[split] == 0:
                raise DataError(
                    empty_file,
                    None,
                    f"the {split} split is empty after the history >= {config.min_history} filter",
                )
        cands = {"val": _with_candidates(heldout["val"], n_items, config, 0)}
        cands["test"] = _with_candidates(heldout["test"], n_items, config, counts["val"])
        for s in ("val", "test"):
            writer.write(s, heldout[s], cands[s])
    finally:
        writer.close()
        close = getattr(parts, "close", None)
        if close is not None:
            close()
    sha = candidates_sha256([cands["val"], cands["test"]])
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
    (out_dir / "card.md").write_text(
        card(meta, config, notes, titles[:5], released_files=released_files), encoding="utf-8"
    )
    return {
        "name": name,
        "domain": domain,
        "n_items": n_items,
        "n_users": n_users,
        "n_interactions": n_interactions,
        "splits": counts,
        "candidates_sha256": sha,
    }
