"""A fine-tuned model must be evaluated on prompts and item embeddings that fit it.

The finetune artifact's ``summary.json`` records what it was trained on (dataset, backbone, item
count, vocabulary, embedding hash and width). ``check_pairing`` compares that with the prompts and
embedding artifacts given to the evaluate stage and refuses a pair that does not fit, with one line
naming both files.
"""

from __future__ import annotations

from pathlib import Path

from stages.errors import DataError
from stages.files import sha256_file
from stages.inputs import read_json, safetensors_header
from stages.llm.inputs import EMBEDDINGS_FILE, EMBEDDINGS_KEY


def embeddings_shape(directory: Path) -> tuple[int, int]:
    """(rows, dim) of an item-embedding artifact's table, read from the checked safetensors header."""
    path = Path(directory) / EMBEDDINGS_FILE
    shape = safetensors_header(path).get(EMBEDDINGS_KEY, {}).get("shape")
    if not (isinstance(shape, list) and len(shape) == 2):
        raise DataError(path, EMBEDDINGS_KEY, f"expected a 2-d table, got shape {shape}")
    return int(shape[0]), int(shape[1])


def check_pairing(prompts_dir: Path, model_dir: Path, embeddings_dir: Path | None) -> None:
    """Refuse a fine-tune evaluated on another dataset's prompts, backbone, vocabulary or embeddings."""
    prompts_file = Path(prompts_dir) / "prompts.json"
    summary_file = Path(model_dir) / "summary.json"
    info = read_json(prompts_file)
    summary = read_json(summary_file) if summary_file.is_file() else {}
    trained = summary.get("trained_on") or {}
    both = f"(model {summary_file}, prompts {prompts_file})"
    for key, ours in (("dataset", summary.get("dataset")), ("backbone", summary.get("backbone"))):
        if ours is not None and info.get(key) is not None and ours != info[key]:
            raise DataError(prompts_file, key, f"{info[key]!r} but the model was trained on {ours!r} {both}")
    for key in ("n_items", "vocab_size"):
        if trained.get(key) is not None and info.get(key) is not None and trained[key] != info[key]:
            raise DataError(
                prompts_file, key, f"{info[key]} but the model was trained with {trained[key]} {both}"
            )
    if embeddings_dir is None:
        return
    emb_file = Path(embeddings_dir) / EMBEDDINGS_FILE
    rows, dim = embeddings_shape(Path(embeddings_dir))
    if info.get("n_items") is not None and rows != info["n_items"]:
        raise DataError(
            emb_file, "item_embeddings", f"{rows} rows for the {info['n_items']} items of {prompts_file}"
        )
    if trained.get("embedding_dim") is not None and dim != trained["embedding_dim"]:
        raise DataError(
            emb_file,
            "item_embeddings",
            f"dimension {dim}, the model's projector takes {trained['embedding_dim']}",
        )
    sha = trained.get("embeddings_sha256")
    if sha is not None and sha256_file(emb_file) != sha:
        raise DataError(
            emb_file, "item_embeddings", f"not the embeddings the model was trained with ({summary_file})"
        )
