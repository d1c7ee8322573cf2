"""The projector: SR item embedding -> LLM input embedding, written at every item placeholder.

LLaRA's projector is ``Linear(item_dim, d) -> GELU -> Linear(d, d)`` (``norm="none"``). Its output
scale is whatever the initialisation gives: on SmolLM2-135M a fresh projector writes vectors
several times the norm of the backbone's own token embeddings (``token_rms``), so the item tokens
dominate the residual stream at their positions and what later layers add there is small beside
them. The normalised variants end in a LayerNorm: ``layernorm`` with unit gain (the usual init),
``token`` with its gain initialised to the RMS of the backbone's token embeddings, so that a
projected item starts at the scale of a word.

The user token (a method variant, not LLaRA's): a second MLP of the same shape, ``user``, maps the
row's last history item to a vector added to the input at the answer cue, the prompt's last token,
whose position predicts the answer. There the model holds what to look for among the candidates
where it has to choose, instead of first fetching it from the history (a second attention hop).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

ProjectorNorm = Literal["none", "layernorm", "token"]
PROJECTOR_NORMS: tuple[str, ...] = ("none", "layernorm", "token")
UserToken = Literal["none", "last-item"]
USER_TOKENS: tuple[str, ...] = ("none", "last-item")


def _mlp(item_dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(item_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))


class Projector(nn.Module):
    """``Linear(item_dim, d) -> GELU -> Linear(d, d)`` [``-> LayerNorm(d)``], and the user token's MLP."""

    def __init__(
        self,
        item_dim: int,
        hidden: int,
        norm: ProjectorNorm = "none",
        gain: float = 1.0,
        user_token: UserToken = "none",
    ) -> None:
        super().__init__()
        if norm not in PROJECTOR_NORMS:
            raise ValueError(f"unknown projector norm {norm!r}: one of {', '.join(PROJECTOR_NORMS)}")
        if user_token not in USER_TOKENS:
            raise ValueError(f"unknown user token {user_token!r}: one of {', '.join(USER_TOKENS)}")
        self.net = _mlp(item_dim, hidden)
        self.norm = nn.LayerNorm(hidden) if norm != "none" else None
        if self.norm is not None and norm == "token":
            nn.init.constant_(self.norm.weight, gain)
        self.user: nn.Sequential | None = None
        if user_token != "none":
            self.user = _mlp(item_dim, hidden)
            if self.norm is not None:
                self.user.append(nn.LayerNorm(hidden))
                nn.init.constant_(self.user[-1].weight, gain if norm == "token" else 1.0)

    def forward(self, items: torch.Tensor) -> torch.Tensor:  # (n, item_dim) -> (n, d)
        out = self.net(items)
        return self.norm(out) if self.norm is not None else out

    def user_vectors(self, items: torch.Tensor) -> torch.Tensor:  # (B, item_dim) -> (B, d)
        """The user token's input vectors (its MLP ends in a LayerNorm of its own when the items' does)."""
        assert self.user is not None, "this projector has no user token"
        return self.user(items)

    @classmethod
    def for_state(cls, state: dict[str, torch.Tensor]) -> Projector:
        """An empty projector of the shape and kind that ``state`` (a saved state dict) holds."""
        first, last = state["net.0.weight"], state["net.2.weight"]  # (d, item_dim), (d, d)
        norm: ProjectorNorm = "layernorm" if "norm.weight" in state else "none"
        user: UserToken = "last-item" if "user.0.weight" in state else "none"
        return cls(first.shape[1], last.shape[0], norm, user_token=user)


def token_rms(embedding: torch.Tensor) -> float:
    """RMS of the entries of a (vocab, d) token-embedding matrix: the scale of a word's input vector."""
    return float(embedding.detach().float().pow(2).mean().sqrt())
