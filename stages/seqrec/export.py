"""Stage ``export-embeddings``: the frozen (n_items, 64) input item-embedding table for stage 2.

Row i is item_id i, no padding row. For MoRec the rows are the trained linear map applied to the
frozen title vectors, i.e. exactly what the model fed its encoder. Stage 2 depends on this artifact
alone; ``embedding.json`` carries the tensor's sha256 so a consumer can check what it loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from stages.item_embeddings import save_item_embeddings
from stages.seqrec.pretrain import load_model

NAME = "export-embeddings"


@dataclass(frozen=True)
class ExportConfig:
    """Configuration of ``export-embeddings``."""

    include_metrics: bool = True
    """Copy the recommender's own val/test HR@1 from the pretrain artifact into ``embedding.json``."""


def run(config: ExportConfig, inputs: dict[str, Path], out_dir: Path) -> dict:
    """inputs: {"model": pretrain artifact}; writes item_embeddings.safetensors + embedding.json."""
    model, meta = load_model(Path(inputs["model"]))
    with torch.no_grad():
        table = model.items.table().detach().float().contiguous().clone()  # (n_items, dim)
    info = {"model": meta["config"]["model"], "dataset": meta.get("dataset"), "loss": meta["config"]["loss"],
            "seed": meta["config"]["seed"]}
    metrics_file = Path(inputs["model"]) / "metrics.json"
    if config.include_metrics and metrics_file.exists():
        m = json.loads(metrics_file.read_text())
        info["val_hr@1"], info["test_hr@1"] = m["val"]["hr@1"], m["test"]["hr@1"]
    info = save_item_embeddings(table, out_dir, **info)
    return {k: info[k] for k in ("model", "n_items", "dim", "sha256")}
