"""Backbone specs: tiny-random is deterministic and cached with verified hashes; bad specs are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stages.errors import DataError
from stages.llm.backbone import SPECIAL_TOKENS, build_tiny_random, load_backbone, resolve_backbone_dir


def test_tiny_random_has_special_tokens_and_resized_embeddings(tmp_path: Path) -> None:
    backbone = load_backbone("tiny-random", tmp_path)
    tok = backbone.tokenizer
    assert all(len(tok(t, add_special_tokens=False)["input_ids"]) == 1 for t in SPECIAL_TOKENS)
    emb = backbone.model.get_input_embeddings().weight
    assert emb.shape[0] == len(tok) and backbone.hidden_size == 64
    assert not any(p.requires_grad for p in backbone.model.parameters())
    # loading through hf:DIR gives the same weights
    again = load_backbone(f"hf:{build_tiny_random(tmp_path)}", tmp_path)
    torch.testing.assert_close(again.model.get_input_embeddings().weight, emb)


def test_tampered_cache_is_rebuilt(tmp_path: Path) -> None:
    directory = build_tiny_random(tmp_path)
    weights = directory / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-8] + b"\0" * 8)
    assert build_tiny_random(tmp_path) == directory
    assert weights.read_bytes() == original


def test_unknown_specs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        resolve_backbone_dir("llama-9000", tmp_path)
    with pytest.raises(DataError, match="nowhere"):
        resolve_backbone_dir(f"hf:{tmp_path / 'nowhere'}", tmp_path)
