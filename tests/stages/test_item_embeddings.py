"""One item-embedding reader, checked: the LLM stages load the table the embeddings stage wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from stages.errors import DataError
from stages.item_embeddings import FILE, INFO, load_item_embeddings, save_item_embeddings


def test_the_llm_stages_use_the_one_checked_loader() -> None:
    from stages.llm import inputs

    assert inputs.load_item_embeddings is load_item_embeddings


def test_a_table_round_trips_and_a_changed_one_is_refused(tmp_path: Path) -> None:
    table = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    info = save_item_embeddings(table, tmp_path, model="random")
    assert (info["n_items"], info["dim"], info["model"]) == (7, 4, "random")
    assert torch.equal(load_item_embeddings(tmp_path, n_items=7, dim=4), table)
    with pytest.raises(DataError, match="8 items"):
        load_item_embeddings(tmp_path, n_items=8)
    with pytest.raises(DataError, match="projector takes 5"):
        load_item_embeddings(tmp_path, dim=5)
    save_file({"item_embeddings": table + 1}, str(tmp_path / FILE))
    with pytest.raises(DataError, match="sha256"):
        load_item_embeddings(tmp_path, n_items=7)
    (tmp_path / INFO).unlink()
    with pytest.raises(DataError, match=INFO):
        load_item_embeddings(tmp_path)
