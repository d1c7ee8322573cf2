"""Benchmark the prepare stage: bundled MovieLens-100K, then generated ml100k-format datasets of
two sizes (default 2.5M and 10M interactions).

    .venv/bin/python benchmarks/bench_prepare.py            # all (the big part takes about a minute)
    .venv/bin/python benchmarks/bench_prepare.py --no-big   # MovieLens-100K only (target <= 5 s)
    .venv/bin/python benchmarks/bench_prepare.py --sizes 1000000,4000000,16000000

Each preparation runs in a fresh subprocess, which reports its wall time and peak RSS
(``ru_maxrss``). "Bounded memory" is shown as a ratio measured in one run: between the smallest
and the largest size, peak RSS must grow by less than the input does (memory per input MB goes
down or stays flat); the last line prints both ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(source: str, out: str) -> None:
    sys.path.insert(0, str(ROOT))
    from stages.preprocess import PrepareConfig, run

    start = time.perf_counter()
    summary = run(PrepareConfig(source=source), {}, Path(out))
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "wall_s": wall,
                "peak_rss_mb": peak_mb,
                "splits": summary["splits"],
                "n_interactions": summary["n_interactions"],
            }
        )
    )


def measure(source: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", source, out], capture_output=True, text=True
        )
        if proc.returncode:
            raise SystemExit(proc.stderr)
        return json.loads(proc.stdout.strip().splitlines()[-1])


def generate(d: Path, n: int, n_users: int = 100_000, n_items: int = 20_000, seed: int = 0) -> Path:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    chunk = 2_000_000
    with open(d / "u.data", "wb") as f:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            pl.DataFrame(
                {
                    "u": rng.integers(1, n_users + 1, m),
                    "i": rng.integers(1, n_items + 1, m),
                    "r": rng.integers(1, 6, m),
                    "t": rng.integers(874_000_000, 893_000_000, m),
                }
            ).write_csv(f, separator="\t", include_header=False)
    lines = (
        f"{i}|Item {i} ({1950 + i % 50})|01-Jan-{1950 + i % 50}||http://x|0\n" for i in range(1, n_items + 1)
    )
    (d / "u.item").write_bytes("".join(lines).encode("latin-1"))
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("SOURCE", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument(
        "--big",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the generated large datasets (default on)",
    )
    ap.add_argument(
        "--sizes",
        default="2500000,10000000",
        help="comma-separated interaction counts of the generated datasets (default 2.5M and 10M)",
    )
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    r = measure("bundled:movielens-100k")
    print(
        f"bundled MovieLens-100K: {r['wall_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB, "
        f"splits {r['splits']}"
    )
    if not args.big:
        return
    sizes = sorted(int(x) for x in args.sizes.split(","))
    results = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            d = generate(Path(tmp) / "big", n)
            size_mb = (d / "u.data").stat().st_size / 2**20
            gen_s = time.perf_counter() - start
            r = measure(f"ml100k:{d}")
        results.append((n, size_mb, r))
        print(
            f"ml100k {n:,} interactions ({size_mb:.0f} MB u.data, generated in {gen_s:.1f} s): "
            f"{r['wall_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
            f"({r['peak_rss_mb'] / size_mb:.2f} MB per input MB), splits {r['splits']}"
        )
    if len(results) >= 2:
        (n0, mb0, r0), (n1, mb1, r1) = results[0], results[-1]
        size_ratio, rss_ratio = mb1 / mb0, r1["peak_rss_mb"] / r0["peak_rss_mb"]
        per_mb = (r1["peak_rss_mb"] / mb1) / (r0["peak_rss_mb"] / mb0)
        verdict = (
            "bounded (sub-linear)" if rss_ratio <= size_ratio * 1.05 else "NOT bounded (grows with input)"
        )
        print(
            f"{n0:,} -> {n1:,} interactions: input x{size_ratio:.2f}, peak RSS x{rss_ratio:.2f}, "
            f"peak RSS per input MB x{per_mb:.2f}: memory {verdict}"
        )


if __name__ == "__main__":
    main()
