"""The item-embedding table: written by the ``embeddings`` stage, read by ``finetune`` and ``evaluate``.

One tensor ``item_embeddings`` of shape (n_items, dim) float32 in ``item_embeddings.safetensors``;
row i is item_id i (no padding row). ``embedding.json`` beside it carries the tensor's sha256, so a
reader knows the table it loaded is the one that was written. This is the only reader of the
format: the stage that writes it and the stages that consume it share the check.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from stages.errors import DataError
from stages.inputs import load_tensor, read_json

FILE, TENSOR, INFO = "item_embeddings.safetensors", "item_embeddings", "embedding.json"


def tensor_sha256(table) -> str:
    """sha256 of the raw little-endian float32 bytes of the (contiguous) tensor."""
    return hashlib.sha256(table.detach().float().contiguous().numpy().tobytes()).hexdigest()


def save_item_embeddings(table, out_dir: str | Path, **info: Any) -> dict[str, Any]:
    """Write ``table`` (n_items, dim) and its ``embedding.json`` (``info`` plus shape and sha256)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = table.detach().float().contiguous()
    save_file({TENSOR: table}, str(out_dir / FILE))
    n_items, dim = table.shape
    info = {**info, "n_items": int(n_items), "dim": int(dim), "sha256": tensor_sha256(table)}
    (out_dir / INFO).write_text(json.dumps(info, indent=2))
    return info


def load_item_embeddings(directory: str | Path, n_items: int | None = None, dim: int | None = None):
    """The (n_items, dim) float table of an item-embedding artifact, after checking its shape
    against what the caller pairs it with and its sha256 against ``embedding.json``."""
    path = Path(directory) / FILE
    table = load_tensor(path, TENSOR)
    if table.ndim != 2:
        raise DataError(path, TENSOR, f"expected a matrix, got shape {tuple(table.shape)}")
    if n_items is not None and table.shape[0] != n_items:
        raise DataError(path, TENSOR, f"{table.shape[0]} rows, but the prompts' dataset has {n_items} items")
    if dim is not None and table.shape[1] != dim:
        raise DataError(path, TENSOR, f"dimension {table.shape[1]}, the fine-tuned projector takes {dim}")
    info_file = Path(directory) / INFO
    if read_json(info_file, ("sha256",))["sha256"] != tensor_sha256(table):
        raise DataError(info_file, "sha256", f"does not match the table in {path}")
    return table.float()
