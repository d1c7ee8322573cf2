"""Do a fine-tune's steps get slower after validations, in the same process?

A long CPU run's steps slowed by 20-30 % against its own pilot while the machine's matmul speed
did not (docs/long-runs.md). This runs the finetune recipe on the same batches for ``--rounds``
rounds of ``--steps`` optimizer steps, each round followed by a validation (``with``), or by
nothing (``without``), each setting in a fresh child process and the settings alternated
``--repeats`` times, so the machine's drift falls on both alike. ``--batches same`` (default): the
same batches every step, so the shapes, tokens and kernels do not change, only what the process
went through. ``--batches run``: the run's own batches in its order (a new shape every step, as a
long run sees them), so the rounds compare tokens/s.

Figures: per round, the median step seconds and CPU seconds, tokens/s, and at the round's end the
process's RSS and, under glibc, its heap (``mallinfo2``: bytes in the main arena, free chunks);
per setting, the last round's median over the first's (above 1: slower after the rounds; with
``--batches run``, the first round's tokens/s over the last's). The last line is one JSON object.

    python benchmarks/bench_after_validation.py --prompts P --embeddings E            # ~25 min
    python benchmarks/bench_after_validation.py --prompts P --embeddings E --batches run \\
        --rounds 4 --steps 10 --grad-accum 4 --val-rows 32 --repeats 1                # ~30 min
    python benchmarks/bench_after_validation.py --backbone tiny-random --steps 2 --rounds 2 \\
        --repeats 1 --val-rows 4                                                       # a smoke
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SETTINGS = ("with", "without")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")
    ]


def memory() -> dict[str, int]:
    """RSS (MB) and, under glibc, the main heap's size (MB) and free chunks (its fragmentation)."""
    out = {"rss_mb": int(Path("/proc/self/statm").read_text().split()[1]) * 4096 >> 20}
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):  # not glibc, or glibc before 2.33
        return out
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {**out, "heap_mb": info.arena >> 20, "free_chunks": info.ordblks}


def child(spec: dict) -> None:
    """One process: rounds of steps on fixed batches, a validation after each round or none."""
    from stages.llm.finetune import FinetuneRecipe
    from stages.llm.process_clock import process_clock
    from stages.llm.profiles import profile

    config = replace(
        profile("cpu", max_steps=10_000),
        backbone=spec["backbone"],
        grad_accum=spec["grad_accum"],
        val_rows=spec["val_rows"],
        checkpoint_every=0,
    )
    recipe = FinetuneRecipe(config, Path(spec["prompts"]), Path(spec["embeddings"]), Path(spec["out"]))
    recipe.setup()
    candidates = recipe.data.epoch_candidates(0)
    micro = recipe.data.micro_batches(
        0, config.micro_batch, recipe.micro_per_step, candidates, config.length_grouping
    )
    fixed = recipe.step_batches(micro, candidates, 0, 0)
    rounds = []
    step = 0
    replay = spec["batches"] == "run"
    for r in range(spec["rounds"]):
        spent, tokens = [], []
        for _ in range(spec["steps"] + (1 if r == 0 else 0)):  # the very first step pays one-off costs
            batches = recipe.step_batches(micro, candidates, step, step) if replay else fixed
            clock = process_clock()
            recipe.optimizer_step(batches, True)
            spent.append(clock.since())
            tokens.append(sum(b.real_tokens for b in batches))
            step += 1
        spent, tokens = (spent[1:], tokens[1:]) if r == 0 else (spent, tokens)
        rounds.append(
            {
                "seconds": statistics.median(s["seconds"] for s in spent),
                "cpu_seconds": statistics.median(s["cpu_seconds"] for s in spent),
                "tokens_per_s": sum(tokens) / sum(s["seconds"] for s in spent),
                **memory(),
            }
        )
        if spec["setting"] == "with":
            recipe.global_step += 1  # each validation at its own step in the selection's history
            recipe.validate()
    recipe.close()
    print(json.dumps({"setting": spec["setting"], "rounds": rounds}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--prompts", type=Path, help="a prompts artifact built for --backbone")
    parser.add_argument("--embeddings", type=Path, help="the item embeddings of --prompts")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of steps (a validation after each)")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per round")
    parser.add_argument("--grad-accum", type=int, default=2, help="micro-batches of 4 rows per step")
    parser.add_argument("--val-rows", type=int, default=48, help="validation rows (val and fit)")
    parser.add_argument("--repeats", type=int, default=2, help="times each setting runs, alternated")
    parser.add_argument(
        "--batches", choices=("same", "run"), default="same",
        help="same: the first step's batches every step; run: the run's batches in its order",
    )
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from bench_step import measure  # its child launcher, pointed at this script

    work = Path(tempfile.mkdtemp(prefix="bench-after-validation-"))
    if args.prompts is None:
        from bench_finetune import synthetic_inputs

        from stages.llm import prompts

        dataset, embeddings = synthetic_inputs(work / "data", min_history=10)
        prompts_dir = work / "prompts"
        prompts_dir.mkdir()
        prompts.run(prompts.PromptsConfig(backbone=args.backbone, item_order="token-first"),
                    {"dataset": dataset}, prompts_dir)
    else:
        prompts_dir, embeddings = args.prompts, args.embeddings
    base = {
        "backbone": args.backbone,
        "prompts": str(prompts_dir),
        "embeddings": str(embeddings),
        "rounds": args.rounds,
        "steps": args.steps,
        "grad_accum": args.grad_accum,
        "val_rows": args.val_rows,
        "batches": args.batches,
    }
    runs = []
    for repeat in range(args.repeats):
        for setting in SETTINGS:
            run = measure({**base, "setting": setting, "out": str(work / f"{setting}-{repeat}")}, __file__)
            seconds = [r["seconds"] for r in run["rounds"]]
            speed = [r["tokens_per_s"] for r in run["rounds"]]
            same = args.batches == "same"
            run["last_over_first"] = seconds[-1] / seconds[0] if same else speed[0] / speed[-1]
            runs.append(run)
            cells = " ".join(f"{s:6.2f}" for s in seconds) if same else " ".join(f"{s:5.0f}" for s in speed)
            unit = "round medians" if same else "tokens/s"
            growth = run["last_over_first"]
            memory_cells = " ".join(f"{r['rss_mb']}" for r in run["rounds"])
            print(f"{setting:>8} validations: {unit} {cells}; last / first x{growth:.2f}; "
                  f"RSS MB {memory_cells}")
    growth = {
        s: statistics.fmean(r["last_over_first"] for r in runs if r["setting"] == s) for s in SETTINGS
    }
    with_, without = growth["with"], growth["without"]
    print(f"last round / first, mean over repeats: with x{with_:.2f}, without x{without:.2f}")
    result = {"backbone": args.backbone, "growth_with": with_, "growth_without": without, "runs": runs}
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
