"""Wall time of a fully cached `llara run` (target <= 10 s), as a user runs it, against the cold run.

Every figure is the wall time of a fresh process, as typed at a shell:

- cold: ``llara run --profile smoke`` on an empty store (computes every stage);
- cached: the same command again (every stage is in the store: no flow run, no Prefect server);
- cached through Prefect: the same flow called directly (``reproduce_flow(...)``), which starts
  Prefect's temporary server and records a flow run of cache hits: what the CLI did before.

Usage: python benchmarks/bench_pipeline.py [--profile smoke] [--repeats 3]
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--profile", default="smoke", help="pipeline profile (default: smoke)")
    parser.add_argument("--repeats", type=int, default=3, help="cached runs to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store:
        env = {**os.environ, "PYTHONPATH": str(REPO), "LLARA_STORE": store}
        cli = [sys.executable, "-m", "flows.cli", "run", "--profile", args.profile]
        flow = [
            sys.executable,
            "-c",
            f"from flows.reproduce import reproduce_flow; reproduce_flow(profile={args.profile!r})",
        ]
        cold, _ = timed(cli, env)
        cached, outputs = [], []
        for _ in range(args.repeats):
            seconds, out = timed(cli, env)
            cached.append(seconds)
            outputs.append(out)
        through_prefect = [timed(flow, env)[0] for _ in range(args.repeats)]
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    result = {
        "profile": args.profile,
        "cold_s": round(cold, 2),
        "cached_s": round(median(cached), 2),
        "cached_runs_s": [round(c, 2) for c in cached],
        "cached_through_prefect_s": round(median(through_prefect), 2),
        "shortcut_taken": all("no flow run was needed" in o for o in outputs),
        "prefect_over_shortcut": round(median(through_prefect) / median(cached), 2),
        "target_cached_le_10_s": median(cached) <= 10,
    }
    print(f"profile={args.profile}")
    print(f"cold `llara run` (computes every stage):       {cold:8.2f} s")
    print(f"fully cached `llara run`, median of {args.repeats}:        {result['cached_s']:8.2f} s")
    print(f"fully cached flow through Prefect, median:      {result['cached_through_prefect_s']:8.2f} s")
    print(f"target cached <= 10 s: {'met' if result['target_cached_le_10_s'] else 'NOT met'}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
