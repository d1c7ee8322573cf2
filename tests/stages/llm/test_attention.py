"""The CPU attention path (``stages.llm.attention``) computes what sdpa computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stages.llm.attention import MATMUL_MAX_LENGTH, NAME, _matmul_applies, grouped_attention
from stages.llm.backbone import load_backbone


def _qkv(batch: int = 2, heads: int = 6, kv_heads: int = 2, length: int = 12, dim: int = 8):
    torch.manual_seed(0)
    q = torch.randn(batch, heads, length, dim, requires_grad=True)
    k = torch.randn(batch, kv_heads, length, dim, requires_grad=True)
    v = torch.randn(batch, kv_heads, length, dim, requires_grad=True)
    return q, k, v


def _sdpa(q, k, v, mask=None, causal=False):  # noqa: ANN001, ANN202
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)


def test_causal_attention_and_its_gradients_match_sdpa() -> None:
    q, k, v = _qkv()
    ours = grouped_attention(q, k, v, None, q.shape[-1] ** -0.5, causal=True)
    ref = _sdpa(q, k, v, causal=True)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(ours.square().sum(), (q, k, v))
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_a_padding_mask_matches_sdpa(kind: str) -> None:
    q, k, v = _qkv()
    allowed = torch.ones(12, 12, dtype=torch.bool).tril().repeat(2, 1, 1, 1)  # (B, 1, L, S)
    allowed[1, :, :, :3] = False  # row 1 left-padded by 3
    allowed[1, :, :3, 0] = True  # keep every query row attending somewhere
    mask = allowed if kind == "bool" else torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))
    ours = grouped_attention(q, k, v, mask, q.shape[-1] ** -0.5, causal=False)
    torch.testing.assert_close(ours, _sdpa(q, k, v, mask=mask), rtol=1e-5, atol=1e-5)


def test_sdpa_keeps_the_cases_the_matmul_path_does_not_cover() -> None:
    q, k, _ = (t.detach().bfloat16() for t in _qkv())
    assert _matmul_applies(q, k, None, 0.0)
    assert not _matmul_applies(q.float(), k.float(), None, 0.0)  # fp32: the flash kernel is faster
    assert not _matmul_applies(q, k, None, 0.1)  # attention dropout
    long_k = torch.empty(1, 2, MATMUL_MAX_LENGTH + 1, 8, dtype=torch.bfloat16)
    assert not _matmul_applies(q, long_k, torch.ones(1, 1, 12, MATMUL_MAX_LENGTH + 1, dtype=torch.bool), 0.0)
    assert not _matmul_applies(q[:, :, :4], k, None, 0.0)  # a cache longer than the queries, no mask


def test_a_loaded_backbone_trains_with_it_in_bf16_with_sdpa_s_logits() -> None:
    backbone = load_backbone("tiny-random")
    model = backbone.model.eval()
    assert model.config._attn_implementation == NAME
    ids = torch.randint(0, 100, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 11:] = 0
    calls = []
    handle = torch.nn.functional.scaled_dot_product_attention
    with torch.autocast("cpu", dtype=torch.bfloat16):  # grad mode on, as in training
        torch.nn.functional.scaled_dot_product_attention = lambda *a, **k: calls.append(1) or handle(*a, **k)
        try:
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask)
            assert calls  # forward only (scoring, generation): sdpa
            calls.clear()
            ours = model(input_ids=ids, attention_mask=mask).logits.float()
            assert calls == []  # the matmul path ran, not sdpa
            model.set_attn_implementation("sdpa")
            ref = model(input_ids=ids, attention_mask=mask).logits.float()
            assert calls  # and the reference is sdpa's
        finally:
            torch.nn.functional.scaled_dot_product_attention = handle
    keep = mask.bool()
    torch.testing.assert_close(ours[keep], ref[keep], rtol=2e-2, atol=2e-2)
