"""What every recommender network here builds on: the padding mask and the learned id embedding.

Shared by our models (``stages.seqrec.models``) and the authors' SASRec (``stages.seqrec.released``).
The model factory in ``models`` builds both, so the parts they share live below the two of them.
"""

from __future__ import annotations

import torch
from torch import nn


def real_positions(history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, L, 1) bool: True at real positions. Derived from the lengths, not the ids, so whatever
    sits in a padded slot (the pad id or a stray item id) is ignored."""
    return (torch.arange(history.shape[1], device=history.device) < lengths[:, None]).unsqueeze(-1)


class IdEmbedding(nn.Module):
    """A learned id embedding with one extra padding row (id ``n_items``)."""

    def __init__(self, n_items: int, dim: int, init_std: float) -> None:
        super().__init__()
        self.n_items = n_items
        self.weight = nn.Embedding(n_items + 1, dim)
        nn.init.normal_(self.weight.weight, 0.0, init_std)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight(ids)

    def table(self) -> torch.Tensor:
        return self.weight.weight[: self.n_items]  # (n_items, dim), padding row dropped
