"""The checked inputs of the LLM stages (finetune, evaluate): prompts.json, item embeddings and a
fine-tuned projector, each compared with what the stage pairs it with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.errors import DataError
from stages.inputs import read_json, safetensors_header
from stages.item_embeddings import FILE as EMBEDDINGS_FILE
from stages.item_embeddings import TENSOR as EMBEDDINGS_KEY
from stages.item_embeddings import load_item_embeddings

PROMPTS_INFO_KEYS = ("backbone", "n_items", "n_candidates", "templates", "vocab_size")
PROJECTOR_FILE, PROJECTOR_IN = "projector.safetensors", "net.0.weight"  # Linear(item_dim, d) first

__all__ = [
    "EMBEDDINGS_FILE",
    "EMBEDDINGS_KEY",
    "load_item_embeddings",
    "projector_input_dim",
    "read_prompts_info",
]


def read_prompts_info(
    prompts_dir: str | Path, backbone: str | None = None, vocab_size: int | None = None
) -> dict[str, Any]:
    """``prompts.json`` of a prompts artifact, checked against the backbone (spec and vocabulary)
    the stage is about to use: token ids from another tokenizer would be silently wrong."""
    path = Path(prompts_dir) / "prompts.json"
    info = read_json(path, PROMPTS_INFO_KEYS)
    if backbone is not None and info["backbone"] != backbone:
        raise DataError(
            path, "backbone", f"prompts built for {info['backbone']!r}, the run uses {backbone!r}"
        )
    if vocab_size is not None and info["vocab_size"] != vocab_size:
        raise DataError(
            path,
            "vocab_size",
            f"prompts tokenized for a vocabulary of {info['vocab_size']}, the tokenizer has {vocab_size}",
        )
    return info


def projector_input_dim(model_dir: str | Path) -> int:
    """The item-embedding width a fine-tuned projector was trained on."""
    path = Path(model_dir) / PROJECTOR_FILE
    header = safetensors_header(path)
    shape = header.get(PROJECTOR_IN, {}).get("shape")
    if not (isinstance(shape, list) and len(shape) == 2):
        raise DataError(path, PROJECTOR_IN, "missing or not a matrix")
    return int(shape[1])
