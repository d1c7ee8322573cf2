"""The attention kernel a backbone runs: plain batched matmuls in bf16 on a CPU for short prompts,
sdpa else.

At this project's CPU shapes (SmolLM2-135M, micro-batch 4 of 250 tokens, 9 query heads over 3
key/value heads) the CPU flash kernel behind ``scaled_dot_product_attention`` is slow in bf16: one
layer's forward and backward took 31.7 ms against 17.6 ms for the two matmuls and fp32 softmax
below; in fp32 the flash kernel was the faster, 23.8 against 26.0 ms (``benchmarks/bench_attention.py``,
2-core AMD EPYC with AVX512-BF16, 2026-12-07). In the bf16 training step's profile sdpa was a fifth
of the time. The matmul form materialises each head's (L, L) scores, cheap at these lengths and not
at long ones, so it runs only up to ``MATMUL_MAX_LENGTH`` keys, in bf16, on a CPU; sdpa keeps every
other case (GPUs, fp32, dropout, a key/value cache longer than the queries without a mask).
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "llara_cpu"
MATMUL_MAX_LENGTH = 512
"""Longest key length that takes the matmul path: its scores are B x heads x L x L floats."""


def _matmul_applies(
    query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None, dropout: float
) -> bool:
    if not torch.is_grad_enabled():  # forward only (scoring, generation): the flash kernel is faster
        return False
    length, keys = query.shape[-2], key.shape[-2]
    causal_or_masked = mask is not None or length == keys or length == 1
    # Under autocast the rotary embedding hands over fp32 queries and keys that sdpa runs in bf16.
    autocast_bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    cpu_bf16 = query.device.type == "cpu" and (query.dtype == torch.bfloat16 or autocast_bf16)
    return cpu_bf16 and dropout == 0.0 and keys <= MATMUL_MAX_LENGTH and causal_or_masked


def grouped_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    scaling: float,
    causal: bool,
) -> torch.Tensor:
    """Softmax attention by two matmuls, each key/value head shared by its group of query heads.

    query: (B, H, L, D); key, value: (B, Hkv, S, D); mask: (B, 1, L, S) bool (True: attend) or
    additive float, or None (then causal when ``causal`` and L > 1). Returns (B, H, L, D).
    """
    batch, heads, length, dim = query.shape
    kv_heads, keys = key.shape[1], key.shape[2]
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, length, dim)  # head h uses kv head h // group
    scores = grouped @ key.unsqueeze(2).transpose(-1, -2) * scaling  # (B, Hkv, group, L, S)
    if mask is not None:
        mask = mask[:, :, None]  # (B, 1, 1, L, S): the same for every head
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask
    elif causal and length > 1:
        future = torch.ones(length, keys, dtype=torch.bool, device=query.device).triu(1)
        scores = scores.masked_fill(future, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)  # fp32 softmax, as eager
    return (probs @ value.unsqueeze(2)).reshape(batch, heads, length, dim)


def attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: object,
) -> tuple[torch.Tensor, None]:
    """transformers' attention signature; returns (B, L, H, D) as every implementation does."""
    if not _matmul_applies(query, key, attention_mask, dropout) or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            is_causal=is_causal,
            **kwargs,
        )
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    out = grouped_attention(query, key, value, attention_mask, scale, causal)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, attention_forward)
AttentionMaskInterface.register(NAME, sdpa_mask)  # the masks sdpa gets: None when causal alone suffices


def use_fast_attention(model: torch.nn.Module) -> None:
    """Switch ``model`` (a transformers model) to ``attention_forward``; it chooses per call, so a
    model moved to a GPU afterwards still runs sdpa there."""
    model.set_attn_implementation(NAME)
