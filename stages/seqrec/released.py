"""The LLaRA authors' SASRec network, written from the tensors of their released checkpoints.

What the tensors and recorded attributes show (``rec_model/*.pt``, read by
:mod:`stages.seqrec.checkpoint`): ``item_embeddings`` (n_items + 1 rows, the last = padding),
``positional_embeddings`` (10), ``ln_1``/``ln_2``/``ln_3``, ``mh_attn.linear_{q,k,v}`` (one head),
``feed_forward.w_1``/``w_2`` as ``Conv1d(64, 64, 1)`` with its own ``feed_forward.layer_norm``
(a post-LN residual block), dropout 0.1 everywhere and the head ``s_fc``. Differences from our
:class:`stages.seqrec.models.SASRec`: the feed-forward is a residual block normalised after the
residual, and the queries' pre-LN output (not the raw sequence) is the attention's residual.

The same module trains as our ``sasrec-conv`` architecture (the authors' recipe as an option), so
an imported checkpoint and one of ours are the same network with different weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stages.errors import DataError
from stages.seqrec.layers import IdEmbedding, real_positions

# checkpoint tensor name -> our parameter name (everything else keeps its name)
RENAME = {"item_embeddings.weight": "items.weight.weight", "s_fc.weight": "head.weight",
          "s_fc.bias": "head.bias"}


class ConvFFN(nn.Module):
    """Position-wise feed-forward as two 1x1 convolutions, residual, then LayerNorm."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.w_1, self.w_2 = nn.Conv1d(dim, dim, 1), nn.Conv1d(dim, dim, 1)
        self.layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, d)
        y = self.w_2(F.relu(self.w_1(x.transpose(1, 2)))).transpose(1, 2)  # conv over (B, d, L)
        return self.layer_norm(self.dropout(y) + x)


class Attention(nn.Module):
    """Causal multi-head attention over real positions; queries and keys/values come separately."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.linear_q, self.linear_k = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        B, L, d = queries.shape
        h = self.heads
        Q = self.linear_q(queries).view(B, L, h, d // h).transpose(1, 2)  # (B, h, L, d/h)
        K = self.linear_k(keys).view(B, L, h, d // h).transpose(1, 2)
        V = self.linear_v(keys).view(B, L, h, d // h).transpose(1, 2)
        causal = torch.ones(L, L, dtype=torch.bool, device=queries.device).tril()
        allowed = causal & real.squeeze(-1)[:, None, None, :]  # (B, 1, L, L)
        att = (Q @ K.transpose(-2, -1)) / math.sqrt(d // h)
        att = att.masked_fill(~allowed, float("-inf")).softmax(dim=-1)  # position 0 is always real
        att = F.dropout(att, self.dropout, self.training)
        return (att @ V).transpose(1, 2).reshape(B, L, d) + queries  # residual on the queries


class ReleasedSASRec(nn.Module):
    """The released network; same interface as our models (``items.table()``, catalogue logits)."""

    def __init__(self, n_items: int, max_len: int = 10, dim: int = 64, dropout: float = 0.1,
                 heads: int = 1, init_std: float = 1.0) -> None:
        super().__init__()
        self.n_items = n_items
        self.items = IdEmbedding(n_items, dim, init_std)
        self.positional_embeddings = nn.Embedding(max_len, dim)
        self.emb_dropout = nn.Dropout(dropout)
        self.ln_1, self.ln_2, self.ln_3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mh_attn = Attention(dim, heads, dropout)
        self.feed_forward = ConvFFN(dim, dropout)
        self.head = nn.Linear(dim, n_items)

    def state(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, d): the sequence's state at its last real item."""
        B, L = history.shape
        real = real_positions(history, lengths)  # (B, L, 1)
        x = self.items(history) + self.positional_embeddings(torch.arange(L, device=history.device))
        x = self.emb_dropout(x) * real
        q = self.ln_1(x)  # pre-LN on the queries; keys/values read the raw sequence
        y = self.feed_forward(self.ln_2(self.mh_attn(q, x, real)))
        y = self.ln_3(y * real)
        return y[torch.arange(B, device=y.device), lengths - 1]

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.state(history, lengths))  # (B, n_items)


def from_tensors(tensors: dict[str, torch.Tensor], file: str, max_len: int = 10) -> ReleasedSASRec:
    """Build the network from a checkpoint's named tensors; shapes decide the sizes."""
    need = ("item_embeddings.weight", "positional_embeddings.weight", "s_fc.weight",
            "feed_forward.w_1.weight", "mh_attn.linear_q.weight")
    for name in need:
        if name not in tensors:
            raise DataError(file, name, "tensor missing: not a released LLaRA SASRec checkpoint")
    rows, dim = tensors["item_embeddings.weight"].shape
    n_items = int(tensors["s_fc.weight"].shape[0])
    if rows != n_items + 1:
        raise DataError(file, "item_embeddings.weight", f"{rows} rows for a head over {n_items} items "
                        "(expected one padding row more)")
    if tensors["positional_embeddings.weight"].shape[0] != max_len:
        raise DataError(file, "positional_embeddings.weight", f"expected {max_len} positions")
    model = ReleasedSASRec(n_items, max_len, int(dim))
    state = {RENAME.get(k, k): v for k, v in tensors.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DataError(file, (missing or unexpected)[0], "tensor names do not match the released SASRec")
    return model.eval()
