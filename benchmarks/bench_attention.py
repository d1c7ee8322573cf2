"""Attention forward + backward at the CPU fine-tune's shapes: sdpa's kernels against the matmul path.

The shapes default to SmolLM2-135M's (9 query heads, 3 key/value heads of 64) at micro-batch 4 of
250 tokens, a LastFM prompt's length. Each variant runs in each ``--precision`` (default ``native``:
fp32, and bf16 where the CPU multiplies it natively) on the same tensors in one process; the
figures are the median milliseconds of one layer's forward and backward, and the ratio sdpa (the
flash kernel) / matmul per precision. ``stages.llm.attention`` picks by these.

    python benchmarks/bench_attention.py
    python benchmarks/bench_attention.py --length 512 --batch 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.llm.attention import grouped_attention  # noqa: E402
from stages.precision import precisions_to_measure  # noqa: E402


def sdpa_with(backend: SDPBackend) -> Callable[..., torch.Tensor]:
    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

    return attend


def matmul(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return grouped_attention(q, k, v, None, q.shape[-1] ** -0.5, causal=True)


def milliseconds(
    attend: Callable[..., torch.Tensor], shapes: tuple[int, ...], dtype: torch.dtype, repeats: int
) -> float:
    batch, heads, kv_heads, length, dim = shapes
    q = torch.randn(batch, heads, length, dim, dtype=dtype, requires_grad=True)
    k = torch.randn(batch, kv_heads, length, dim, dtype=dtype, requires_grad=True)
    v = torch.randn(batch, kv_heads, length, dim, dtype=dtype, requires_grad=True)
    grad = torch.randn(batch, heads, length, dim, dtype=dtype)
    times = []
    for i in range(repeats + 3):  # three warm-up runs
        start = time.perf_counter()
        attend(q, k, v).backward(grad)
        if i >= 3:
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--heads", type=int, default=9)
    parser.add_argument("--kv-heads", type=int, default=3)
    parser.add_argument("--length", type=int, default=250)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--precision",
        default="native",
        help="native (fp32, and bf16 where the CPU multiplies it natively) or comma-separated: fp32, bf16",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    shapes = (args.batch, args.heads, args.kv_heads, args.length, args.dim)
    variants = {
        "flash": sdpa_with(SDPBackend.FLASH_ATTENTION),
        "math": sdpa_with(SDPBackend.MATH),
        "matmul": matmul,
    }
    result: dict[str, object] = {
        "shapes": dict(zip(("batch", "heads", "kv_heads", "length", "dim"), shapes, strict=True)),
        "threads": torch.get_num_threads(),
    }
    dtypes = {"bf16": torch.bfloat16, "fp32": torch.float32}
    for name in precisions_to_measure(args.precision, "cpu"):
        dtype = dtypes[name]
        for variant, attend in variants.items():
            ms = milliseconds(attend, shapes, dtype, args.repeats)
            result[f"{variant}_{name}_ms"] = ms
            print(f"{variant:7s} {name}: {ms:7.2f} ms forward + backward")
        ratio = result[f"flash_{name}_ms"] / result[f"matmul_{name}_ms"]
        result[f"flash_over_matmul_{name}"] = ratio
        print(f"flash / matmul {name}: x{ratio:.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
