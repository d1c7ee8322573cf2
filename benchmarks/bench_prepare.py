"""Benchmark the prepare stage: bundled MovieLens-100K, then a generated 10M-interaction ml100k dataset.

    .venv/bin/python benchmarks/bench_prepare.py            # both (the big part takes a few minutes)
    .venv/bin/python benchmarks/bench_prepare.py --no-big   # MovieLens-100K only (target <= 5 s)

Each preparation runs in its own subprocess, which reports its wall time and peak RSS
(``ru_maxrss``); the big run also prints peak RSS / input size to show memory stays bounded.
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
        help="also run the generated large dataset (default on)",
    )
    ap.add_argument("--n", type=int, default=10_000_000, help="interactions in the generated dataset")
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
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        d = generate(Path(tmp) / "big", args.n)
        size_mb = (d / "u.data").stat().st_size / 2**20
        print(
            f"generated {args.n:,} interactions ({size_mb:.0f} MB u.data) "
            f"in {time.perf_counter() - start:.1f} s"
        )
        r = measure(f"ml100k:{d}")
        print(
            f"ml100k {args.n:,}: {r['wall_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB, "
            f"peak RSS / input size = {r['peak_rss_mb'] / size_mb:.2f}, splits {r['splits']}"
        )


if __name__ == "__main__":
    main()
