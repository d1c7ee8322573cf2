"""The report row of a fine-tune's evaluation, named from what its item-embedding artifact records.

Every item-embedding table says in its ``embedding.json`` which recommender it came from: a
``pretrain`` artifact's model (``sasrec``, ``gru4rec``, ``morec``...) or ``sasrec-released`` for an
``import-sr`` checkpoint. The table is all a fine-tune read of its recommender, so the row is named
from it, whatever kind of artifact the table was exported from. ``llara evaluate`` and ``llara
stage evaluate`` both name their rows here.
"""

from __future__ import annotations

from artifacts import Artifact
from stages.inputs import read_json
from stages.item_embeddings import INFO
from stages.report.config import llara_row, method_variants


def recommender_of(embeddings: Artifact) -> str:
    """The recommender an item-embedding artifact was exported from (its ``embedding.json``'s ``model``)."""
    return str(read_json(embeddings.path / INFO, ("model",))["model"])


def evaluation_row(trained: Artifact, embeddings: Artifact) -> str:
    """``LLaRA(SR)``, an ablation or ``TALLRec``: the row of fine-tune ``trained`` on ``embeddings``."""
    config = trained.manifest["config"]["config"]
    summary_path = trained.path / "summary.json"  # a fine-tune from before item orders: LLaRA's
    summary = read_json(summary_path) if summary_path.is_file() else {}
    item_order = str(summary.get("item_order", "title-first"))
    variants = method_variants(item_order, str(config.get("user_token", "none")))
    return llara_row(recommender_of(embeddings), config["schedule"], variants)
