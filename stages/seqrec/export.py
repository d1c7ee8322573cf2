"""Stage ``export-embeddings``: the frozen (n_items, 64) input item-embedding table for stage 2.

Row i is item_id i, no padding row. For MoRec the rows are the trained linear map applied to the
frozen title vectors, i.e. exactly what the model fed its encoder. Stage 2 depends on this artifact
alone; ``embedding.json`` carries the tensor's sha256 so a consumer can check what it loaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from stages.seqrec.pretrain import load_model

NAME = "export-embeddings"
FILE = "item_embeddings.safetensors"
TENSOR = "item_embeddings"


@dataclass(frozen=True)
class ExportConfig:
    """Configuration of ``export-embeddings``."""

    include_metrics: bool = True
    """Copy the recommender's own val/test HR@1 from the pretrain artifact into ``embedding.json``."""


def tensor_sha256(t: torch.Tensor) -> str:
    """sha256 of the raw little-endian float32 bytes of a contiguous tensor."""
    return hashlib.sha256(t.detach().float().contiguous().numpy().tobytes()).hexdigest()


def load_item_embeddings(export_dir: Path, check: bool = True) -> torch.Tensor:
    """Load the exported table; with ``check`` the sha256 must match ``embedding.json``."""
    export_dir = Path(export_dir)
    t = load_file(str(export_dir / FILE))[TENSOR]
    if check:
        expected = json.loads((export_dir / "embedding.json").read_text())["sha256"]
        if tensor_sha256(t) != expected:
            raise ValueError(f"{export_dir / FILE}: sha256 does not match embedding.json")
    return t


def run(config: ExportConfig, inputs: dict[str, Path], out_dir: Path) -> dict:
    """inputs: {"model": pretrain artifact}; writes item_embeddings.safetensors + embedding.json."""
    model, meta = load_model(Path(inputs["model"]))
    with torch.no_grad():
        table = model.items.table().detach().float().contiguous().clone()  # (n_items, dim)
    out_dir = Path(out_dir)
    save_file({TENSOR: table}, str(out_dir / FILE))
    info = {"model": meta["config"]["model"], "n_items": int(table.shape[0]), "dim": int(table.shape[1]),
            "sha256": tensor_sha256(table), "dataset": meta.get("dataset"), "loss": meta["config"]["loss"],
            "seed": meta["config"]["seed"]}
    metrics_file = Path(inputs["model"]) / "metrics.json"
    if config.include_metrics and metrics_file.exists():
        m = json.loads(metrics_file.read_text())
        info["val_hr@1"], info["test_hr@1"] = m["val"]["hr@1"], m["test"]["hr@1"]
    (out_dir / "embedding.json").write_text(json.dumps(info, indent=2))
    return {k: info[k] for k in ("model", "n_items", "dim", "sha256")}
