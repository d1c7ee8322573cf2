"""Wall time of a fully cached `reproduce` run (target <= 10 s), against the cold run that filled the cache.

Usage: python benchmarks/bench_pipeline.py [--profile smoke] [--source bundled:movielens-100k]
Runs on a throwaway Prefect API (temporary SQLite) and a temporary artifact store.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from flows.reproduce import reproduce_flow


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="smoke", help="pipeline profile (default: smoke)")
    parser.add_argument("--source", default="bundled:movielens-100k", help="data source")
    parser.add_argument("--repeats", type=int, default=3, help="cached runs to time")
    args = parser.parse_args()
    params = dict(source=args.source, profile=args.profile, schedules=["curriculum", "text"])
    with (
        tempfile.TemporaryDirectory() as store,
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        start = time.perf_counter()
        reproduce_flow(store=store, **params)
        cold = time.perf_counter() - start
        cached = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            reproduce_flow(store=store, **params)
            cached.append(time.perf_counter() - start)
    best = sorted(cached)[len(cached) // 2]
    print(f"profile={args.profile} source={args.source}")
    print(f"cold run (computes every stage): {cold:8.2f} s")
    runs = ", ".join(f"{c:.2f}" for c in cached)
    print(f"fully cached run, median of {args.repeats}: {best:8.2f} s  (all: {runs})")
    print(f"cached / cold: {best / cold:.3f}   target cached <= 10 s: {'met' if best <= 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
