"""The projector: SR item embedding -> LLM input embedding, written at every item placeholder.

LLaRA's projector is ``Linear(item_dim, d) -> GELU -> Linear(d, d)`` (``norm="none"``). Its output
scale is whatever the initialisation gives: on SmolLM2-135M a fresh projector writes vectors
several times the norm of the backbone's own token embeddings (``token_rms``), so the item tokens
dominate the residual stream at their positions and what later layers add there is small beside
them. The normalised variants end in a LayerNorm: ``layernorm`` with unit gain (the usual init),
``token`` with its gain initialised to the RMS of the backbone's token embeddings, so that a
projected item starts at the scale of a word.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

ProjectorNorm = Literal["none", "layernorm", "token"]
PROJECTOR_NORMS: tuple[str, ...] = ("none", "layernorm", "token")


class Projector(nn.Module):
    """``Linear(item_dim, d) -> GELU -> Linear(d, d)`` [``-> LayerNorm(d)``]."""

    def __init__(self, item_dim: int, hidden: int, norm: ProjectorNorm = "none", gain: float = 1.0) -> None:
        super().__init__()
        if norm not in PROJECTOR_NORMS:
            raise ValueError(f"unknown projector norm {norm!r}: one of {', '.join(PROJECTOR_NORMS)}")
        self.net = nn.Sequential(nn.Linear(item_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.norm = nn.LayerNorm(hidden) if norm != "none" else None
        if self.norm is not None and norm == "token":
            nn.init.constant_(self.norm.weight, gain)

    def forward(self, items: torch.Tensor) -> torch.Tensor:  # (n, item_dim) -> (n, d)
        out = self.net(items)
        return self.norm(out) if self.norm is not None else out

    @classmethod
    def for_state(cls, state: dict[str, torch.Tensor]) -> Projector:
        """An empty projector of the shape and kind that ``state`` (a saved state dict) holds."""
        first, last = state["net.0.weight"], state["net.2.weight"]  # (d, item_dim), (d, d)
        norm: ProjectorNorm = "layernorm" if "norm.weight" in state else "none"
        return cls(first.shape[1], last.shape[0], norm)


def token_rms(embedding: torch.Tensor) -> float:
    """RMS of the entries of a (vocab, d) token-embedding matrix: the scale of a word's input vector."""
    return float(embedding.detach().float().pow(2).mean().sqrt())
