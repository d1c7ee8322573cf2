"""The fixed cost of an optimizer step: the same short rows at 1, 2, 4 and 8 rows a step, and a
long-profile step beside them, each in a child process of its own.

Short rows are the relational check's (``stages.llm.synthetic``: about 60 tokens, token-first
prompts); long rows are LastFM-length (histories of 10 items and 20 candidates, about 250 tokens),
synthetic unless ``--prompts/--embeddings`` name real ones. Every run is the ``cpu`` profile's
recipe (``direct``, no LoRA dropout, bf16 where the CPU has it) with one micro-batch a step for
the short rows and micro-batch 4 x accumulation 4 for the long ones, as ``--profile cpu`` trains.

Figures: the median seconds of a step (the first left out) and its real tokens; a least-squares
line seconds = fixed + tokens / rate over the short-row runs, whose intercept is the cost of a step
that does not scale with its tokens; where a step's time goes (forward, backward, the optimizer's
``engine.step``, the loss/token reduction, the rest of the timed step (waiting for the batch, the
projector's step), and the monitor's log line and TensorBoard write after it, which the step time
does not count); and the ratio of the relational
check's step (8 rows) to the long-profile step in tokens/s. The last line is one JSON object.

    python benchmarks/bench_step.py
    python benchmarks/bench_step.py --backbone tiny-random --steps 4          # seconds, for a smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PARTS = ("forward", "backward", "engine_step", "reduction", "rest", "monitor")


def _timed(function: Callable[..., Any], part: str, parts: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            parts[part] += time.perf_counter() - start

    return wrapper


def child(spec: dict) -> None:
    """One run of the finetune recipe with its step's parts timed; prints its JSON."""
    import torch

    from stages.llm.data import Batch
    from stages.llm.finetune import FinetuneRecipe
    from stages.llm.profiles import profile

    config = replace(
        profile("cpu", max_steps=spec["steps"]),
        backbone=spec["backbone"],
        micro_batch=spec["micro_batch"],
        grad_accum=spec["grad_accum"],
        max_train_rows=None,
        val_rows=0,
        checkpoint_every=0,
        epochs=1000,
    )
    parts: dict[str, float] = defaultdict(float)
    per_step: list[dict[str, float]] = []
    Batch.loss = _timed(Batch.loss, "forward", parts)  # this child process only
    recipe = FinetuneRecipe(config, Path(spec["prompts"]), Path(spec["embeddings"]), Path(spec["out"]))
    recipe.setup()
    engine = recipe.engine
    engine.backward = _timed(engine.backward, "backward", parts)
    engine.step = _timed(engine.step, "engine_step", parts)
    recipe._log_sums = _timed(recipe._log_sums, "reduction", parts)
    monitor_step = _timed(recipe.monitor.step, "monitor", parts)

    def monitor_and_record(row: dict) -> None:
        monitor_step(row)
        inside = sum(parts[p] for p in PARTS if p not in ("monitor", "rest"))
        parts["rest"] = max(0.0, row["seconds"] - inside)  # batch wait, projector step, copies
        per_step.append(dict(parts))
        parts.clear()

    recipe.monitor.step = monitor_and_record
    recipe.train()
    recipe.close()
    log = recipe.log[1:]  # the first step pays one-off costs
    result = {
        "rows": spec["micro_batch"] * spec["grad_accum"],
        "step_seconds": statistics.median(r["seconds"] for r in log),
        "tokens": statistics.median(r["tokens"] for r in log),
        "parts": {p: statistics.fmean(s.get(p, 0.0) for s in per_step[1:]) for p in PARTS},
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


def measure(spec: dict, script: str = __file__) -> dict:
    """Run ``script --child spec`` in a fresh process; its last stdout line, parsed as JSON."""
    done = subprocess.run(
        [sys.executable, script, "--child", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--prompts", type=Path, help="long rows: a prompts artifact built for --backbone")
    parser.add_argument("--embeddings", type=Path, help="the item embeddings of --prompts")
    parser.add_argument("--rows", default="1,2,4,8", help="short rows per step, comma-separated")
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per run (the first not timed)")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from bench_finetune import synthetic_inputs

    from stages.llm.synthetic import SyntheticConfig, build_inputs

    work = Path(tempfile.mkdtemp(prefix="bench-step-"))
    short = build_inputs(work / "short", args.backbone, SyntheticConfig(task="nearest"))
    if args.prompts is None:
        from stages.llm import prompts

        dataset, embeddings = synthetic_inputs(work / "long", min_history=10)
        long_prompts = work / "long" / "prompts"
        long_prompts.mkdir()
        settings = prompts.PromptsConfig(backbone=args.backbone, item_order="token-first")
        prompts.run(settings, {"dataset": dataset}, long_prompts)
    else:
        long_prompts, embeddings = args.prompts, args.embeddings
    base = {"backbone": args.backbone, "steps": args.steps}
    runs = []
    for rows in [int(r) for r in args.rows.split(",")]:
        spec = {**base, "prompts": str(short["prompts"]), "embeddings": str(short["embeddings"])}
        run = measure({**spec, "micro_batch": rows, "grad_accum": 1, "out": str(work / f"short-{rows}")})
        runs.append({"rows_kind": "short", **run})
        print(json.dumps(runs[-1]), flush=True)
    spec = {**base, "prompts": str(long_prompts), "embeddings": str(embeddings)}
    long_run = {
        "rows_kind": "long",
        **measure({**spec, "micro_batch": 4, "grad_accum": 4, "out": str(work / "long")}),
    }
    print(json.dumps(long_run), flush=True)
    tokens = np.array([r["tokens"] for r in runs], dtype=float)
    seconds = np.array([r["step_seconds"] for r in runs])
    per_token, fixed = np.polyfit(tokens, seconds, 1) if len(runs) > 1 else (float("nan"), float("nan"))
    print(f"\n{'rows':>5} {'tokens':>7} {'s/step':>7} {'tok/s':>6}  " + " ".join(f"{p:>11}" for p in PARTS))
    for r in [*runs, long_run]:
        label = f"{r['rows']}{'L' if r['rows_kind'] == 'long' else ''}"
        print(
            f"{label:>5} {r['tokens']:7.0f} {r['step_seconds']:7.2f} {r['tokens'] / r['step_seconds']:6.0f}  "
            + " ".join(f"{r['parts'][p]:11.3f}" for p in PARTS)
        )
    check = next((r for r in runs if r["rows"] == 8), runs[-1])
    ratio = (check["tokens"] / check["step_seconds"]) / (long_run["tokens"] / long_run["step_seconds"])
    print(
        f"\nfixed seconds per step (intercept over the short rows): {fixed:.3f}; "
        f"{1 / per_token:.0f} tokens/s beyond it"
    )
    print(f"relational check's step ({check['rows']} short rows) / long-profile step, tokens/s: x{ratio:.2f}")
    result = {
        "backbone": args.backbone,
        "fixed_seconds": float(fixed),
        "tokens_per_s_beyond_fixed": float(1 / per_token),
        "check_over_long_tokens_per_s": ratio,
        "runs": [*runs, long_run],
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
