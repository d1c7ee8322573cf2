"""Stage ``embeddings``: a recommender's frozen (n_items, 64) input item-embedding table, for the LLM.

Row i is item_id i, no padding row. For MoRec the rows are the trained linear map applied to the
frozen title vectors, i.e. exactly what the model fed its encoder. The input is a ``pretrain`` or an
``import-sr`` artifact; ``finetune`` and ``evaluate`` read this one alone, through
``stages.item_embeddings`` (the format, and the loader that checks the table against its sha256).
(Artifacts made before the stage had this name say ``export-embeddings``.)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from stages.item_embeddings import save_item_embeddings
from stages.seqrec.config import EmbeddingsConfig
from stages.seqrec.pretrain import load_model

NAME = "embeddings"


def run(config: EmbeddingsConfig, inputs: dict[str, Path], out_dir: Path) -> dict:
    """inputs: {"model": a pretrain or import-sr artifact}; writes the table and embedding.json."""
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
