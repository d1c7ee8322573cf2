"""LLaRA's stage-1 sequential recommenders: SASRec, GRU4Rec, Caser, and MoRec (SASRec over text).

All models take a right-padded history ``(B, L)`` of item ids (padding id = ``n_items``) with its
lengths ``(B,)`` and return logits over the whole catalogue ``(B, n_items)``. Each owns an ``items``
module whose ``table()`` is the (n_items, dim) input item-embedding table that stage 2 freezes.
Architectures follow the DROS/LLaRA code (``recommender/A_SASRec_final_bce_llm.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stages.seqrec.layers import IdEmbedding, real_positions
from stages.seqrec.released import ReleasedSASRec

MODELS = ("sasrec", "gru4rec", "caser", "morec", "sasrec-conv")
# Architectures that load_model can rebuild but that are not trained here: an imported checkpoint.
IMPORTED = ("sasrec-released",)


class TextEmbedding(nn.Module):
    """MoRec item vectors: a trained Linear(text_dim -> dim) over frozen title embeddings."""

    def __init__(self, text: torch.Tensor, dim: int) -> None:
        super().__init__()
        self.n_items = text.shape[0]
        pad = torch.zeros(1, text.shape[1], dtype=torch.float32)
        # a persistent buffer: frozen (no gradient) but saved with the model so it reloads alone
        self.register_buffer("text", torch.cat([text.float(), pad]))  # (n_items + 1, text_dim)
        self.proj = nn.Linear(text.shape[1], dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.text[ids])

    def table(self) -> torch.Tensor:
        return self.proj(self.text[: self.n_items])  # (n_items, dim)


class SASRec(nn.Module):
    """One causal self-attention block, pre-LN on the queries, as in LLaRA's SASRec."""

    def __init__(self, items: nn.Module, n_items: int, max_len: int, dim: int, dropout: float,
                 heads: int = 1) -> None:
        super().__init__()
        self.n_items, self.heads, self.dropout = n_items, heads, dropout
        self.items = items
        self.pos = nn.Embedding(max_len, dim)
        self.emb_dropout = nn.Dropout(dropout)
        self.ln_1, self.ln_2, self.ln_3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim),
                                 nn.Dropout(dropout))
        self.head = nn.Linear(dim, n_items)

    def state(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, L = history.shape
        real = real_positions(history, lengths)  # (B, L, 1)
        x = self.items(history) + self.pos(torch.arange(L, device=history.device))  # (B, L, d)
        x = self.emb_dropout(x) * real  # zero the pad positions so the pad row never matters
        q = self.ln_1(x)  # pre-LN on the queries only; keys/values see the raw sequence (DROS)
        d, h = x.shape[-1], self.heads
        Q = self.q(q).view(B, L, h, d // h).transpose(1, 2)  # (B, h, L, d/h)
        K = self.k(x).view(B, L, h, d // h).transpose(1, 2)
        V = self.v(x).view(B, L, h, d // h).transpose(1, 2)
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()  # (L, L)
        allowed = causal & real.squeeze(-1)[:, None, None, :]  # (B, 1, L, L): past and real keys only
        att = (Q @ K.transpose(-2, -1)) / math.sqrt(d // h)  # (B, h, L, L)
        att = att.masked_fill(~allowed, float("-inf"))
        # a right-padded row's position 0 is always real, so no query row is fully masked
        att = F.dropout(att.softmax(dim=-1), self.dropout, self.training)
        y = (att @ V).transpose(1, 2).reshape(B, L, d) + q  # (B, L, d), residual on the queries
        y = y + self.ffn(self.ln_2(y))
        y = self.ln_3(y * real)
        return y[torch.arange(B, device=y.device), lengths - 1]  # (B, d) state at the last real item

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.state(history, lengths))  # (B, n_items)


class GRU4Rec(nn.Module):
    """One GRU layer over the packed history; its last hidden state scores the catalogue.

    Dropout on the input embeddings and on the final state, as in the original GRU4Rec (LLaRA's copy
    has none): on LastFM's 4.6k items and ~1k users the model overfits without it."""

    def __init__(self, items: nn.Module, n_items: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.n_items, self.items = n_items, items
        self.emb_dropout, self.out_dropout = nn.Dropout(dropout), nn.Dropout(dropout)
        self.gru = nn.GRU(dim, dim, num_layers=1, batch_first=True)
        self.head = nn.Linear(dim, n_items)

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.emb_dropout(self.items(history))  # (B, L, d)
        # packing stops the GRU at each row's length, so pad positions are never read
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)  # h: (1, B, d)
        return self.head(self.out_dropout(h[-1]))  # (B, n_items)


class Caser(nn.Module):
    """Horizontal (heights 2,3,4 x 16 filters) + one vertical convolution over the L x d history."""

    def __init__(self, items: nn.Module, n_items: int, max_len: int, dim: int, dropout: float,
                 n_filters: int = 16, heights: tuple[int, ...] = (2, 3, 4)) -> None:
        super().__init__()
        self.n_items, self.items = n_items, items
        self.horizontal = nn.ModuleList(nn.Conv2d(1, n_filters, (h, dim)) for h in heights)
        self.vertical = nn.Conv2d(1, 1, (max_len, 1))
        for conv in [*self.horizontal, self.vertical]:
            nn.init.xavier_normal_(conv.weight)
            nn.init.constant_(conv.bias, 0.1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_filters * len(heights) + dim, n_items)  # 16*3 + 64 = 112 inputs

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = real_positions(history, lengths)  # (B, L, 1)
        x = (self.items(history) * real).unsqueeze(1)  # (B, 1, L, d), pad rows zeroed
        pooled = []
        for conv in self.horizontal:
            h = F.relu(conv(x)).squeeze(-1)  # (B, F, L - height + 1)
            pooled.append(h.max(dim=-1).values)  # (B, F), max-pool over time
        v = F.relu(self.vertical(x)).flatten(1)  # (B, d)
        out = self.dropout(torch.cat([*pooled, v], dim=1))  # (B, 3F + d)
        return self.head(out)  # (B, n_items)


def build_model(name: str, n_items: int, max_len: int = 10, dim: int = 64, dropout: float = 0.1,
                text: torch.Tensor | None = None) -> nn.Module:
    """Build one of ``MODELS`` (or ``IMPORTED``); ``morec`` needs the (n_items, text_dim) title embeddings.

    ``sasrec-conv`` is the authors' SASRec (Conv1d feed-forward with its own post-LN residual; see
    :mod:`stages.seqrec.released`); ``sasrec-released`` is the same network holding imported weights."""
    if name in ("sasrec-conv", "sasrec-released"):
        return ReleasedSASRec(n_items, max_len, dim, dropout)
    if name == "morec":
        if text is None or text.shape[0] != n_items:
            raise ValueError("morec needs text embeddings with one row per item")
        return SASRec(TextEmbedding(text, dim), n_items, max_len, dim, dropout)
    if name == "sasrec":  # LLaRA initialises SASRec's ids with N(0, 1), the RNN/CNN ones with N(0, 0.01)
        return SASRec(IdEmbedding(n_items, dim, 1.0), n_items, max_len, dim, dropout)
    if name == "gru4rec":
        return GRU4Rec(IdEmbedding(n_items, dim, 0.01), n_items, dim, dropout)
    if name == "caser":
        return Caser(IdEmbedding(n_items, dim, 0.01), n_items, max_len, dim, dropout)
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
