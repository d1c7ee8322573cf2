"""Rows/s of candidate scoring (masked vs cache-copy scorer) and of generation, on the same rows.

    python benchmarks/bench_eval.py                                   # tiny-random backbone (seconds)
    python benchmarks/bench_eval.py --backbone smollm2-135m --rows 16
    python benchmarks/bench_eval.py --backbone random:llama-2-7b --device cuda --rows 256

Scoring, both scorers of ``stages.llm.scoring`` on the same rows: ``masked`` (prompt and the
20 answers in one forward under a 4-D mask, the default) and ``cache_copy`` (the previous one: the
prompt's KV cache copied onto every continuation); the ratio is masked / cache_copy, and the largest
score difference between them is printed as a check. Both include the joint tokenization of
prompt + answer for every candidate (``candidate_answer_ids``), also timed alone. Generation: greedy, up to
``--max-new-tokens`` (64, the paper's setting), stopping a row at its first newline.
Peak memory per phase: ``torch.cuda.max_memory_allocated`` on a GPU, peak RSS (VmHWM, reset
between phases through ``/proc/self/clear_refs``) on the CPU. Each ``--precision`` (default
``native``: fp32, and bf16 where the hardware multiplies it natively; both in the same run) loads
the model as the evaluate stage does (bf16: the linear weights in bf16 under autocast,
``stages.llm.mixed_precision``) and the ratios bf16 / fp32 are printed.
Ends with one JSON line.

    python benchmarks/bench_eval.py --backbone smollm2-135m --rows 32 --scorers masked
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.llm.generation import GenerationConfigEval, generate_answers
from stages.llm.rows import EvalRow
from stages.llm.scoring import ScoringConfig, candidate_answer_ids, score_candidates
from stages.precision import precisions_to_measure

WORDS = ["toy", "story", "heat", "casino", "love", "war", "star", "night", "city", "dark", "king", "dream"]


def make_rows(n: int, n_items: int = 200, seed: int = 0) -> list[EvalRow]:
    """Synthetic movie prompts in the LLaRA text-only format: 10 history items, 20 candidates."""
    from stages.llm.templates import TEMPLATES, render_prompt

    rng = random.Random(seed)
    titles = [
        f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {rng.choice(WORDS)} ({1950 + i % 50})"
        for i in range(n_items)
    ]
    rows = []
    for r in range(n):
        items = rng.sample(range(n_items), 30)
        history, cands = items[:10], items[10:]
        prompt = render_prompt(TEMPLATES["movie"][0], titles, history, cands, hybrid=False)
        rows.append(
            EvalRow(
                r, r, prompt, cands[r % 20], tuple(cands), tuple(titles[c] for c in cands), tuple(history)
            )
        )
    return rows


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return
    # Linux: VmHWM starts again from the current RSS; elsewhere the peak covers the process so far.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(run: Callable[[], object], device: torch.device) -> tuple[object, float, float]:
    """(result, seconds, peak MiB) of one call."""
    reset_peak(device)
    start = time.perf_counter()
    result = run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start, peak_mb(device)


def measure(args: argparse.Namespace, precision: str, device: torch.device, rows: list[EvalRow]) -> dict:
    """Every figure of one precision: the model loaded and run as the evaluate stage does."""
    from stages.llm.backbone import load_backbone
    from stages.llm.mixed_precision import autocast, store_frozen_linears_in_bf16

    backbone = load_backbone(args.backbone, device=device)
    model, tokenizer = backbone.model.eval(), backbone.tokenizer
    if precision == "bf16":
        store_frozen_linears_in_bf16(model)
    prompt_tokens = sum(len(tokenizer(r.prompt)["input_ids"]) for r in rows)
    start = time.perf_counter()
    answer_tokens = sum(len(a) for r in rows for a in candidate_answer_ids(tokenizer, r))
    answer_ids_s = time.perf_counter() - start  # part of every scorer's time (joint tokenization)
    configs = {
        "masked": ScoringConfig(max_tokens_per_forward=args.max_tokens_per_forward),
        # the evaluate stage's cache-copy settings: batch_size // 2 prompts, 80 continuations
        "cache_copy": ScoringConfig(method="cache_copy", prompt_batch_size=max(1, args.batch_size // 2)),
    }
    configs = {k: v for k, v in configs.items() if k in args.scorers.split(",")}
    gen_config = GenerationConfigEval(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    figures: dict[str, object] = {
        "prompt_tokens_mean": prompt_tokens / len(rows),
        "answer_tokens_mean": answer_tokens / len(rows),
        "answer_tokenization_rows_per_s": len(rows) / answer_ids_s,
    }
    with autocast(device, precision):
        for config in configs.values():  # warm-up
            score_candidates(model, tokenizer, rows[:1], None, config)
        scores = {}
        for name, config in configs.items():
            scores[name], seconds, peak = timed(
                lambda c=config: score_candidates(model, tokenizer, rows, None, c)[0], device
            )
            figures[f"scoring_{name}_rows_per_s"] = len(rows) / seconds
            figures[f"scoring_{name}_tokens_per_s"] = (prompt_tokens + answer_tokens) / seconds
            figures[f"scoring_{name}_peak_mb"] = peak
            print(f"{precision} scoring {name:>10}: {len(rows) / seconds:8.2f} rows/s  peak {peak:8.0f} MiB")
        figures["scores"] = scores["masked" if "masked" in scores else next(iter(scores))]
        if len(scores) == 2:
            speedup = figures["scoring_masked_rows_per_s"] / figures["scoring_cache_copy_rows_per_s"]
            figures["scoring_masked_over_cache_copy"] = speedup
            figures["scoring_max_abs_diff"] = float(np.abs(scores["masked"] - scores["cache_copy"]).max())
            print(f"{precision} masked / cache_copy: x{speedup:.2f}")
        if not args.skip_generation:
            generate_answers(model, tokenizer, rows[:1], None, gen_config)  # warm-up
            answers, seconds, peak = timed(
                lambda: generate_answers(model, tokenizer, rows, None, gen_config), device
            )
            new_tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)
            figures.update(
                generation_rows_per_s=len(rows) / seconds,
                generation_peak_mb=peak,
                generated_tokens_mean=new_tokens / len(rows),
            )
            print(f"{precision} generation: {len(rows) / seconds:8.2f} rows/s  peak {peak:8.0f} MiB")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="tiny-random", help="any backbone spec (random:llama-2-7b...)")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8, help="generation rows per batch")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-tokens-per-forward", type=int, default=ScoringConfig.max_tokens_per_forward)
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument(
        "--precision",
        default="native",
        help="native (fp32, and bf16 where the hardware multiplies it natively) or comma-separated: "
        "fp32, bf16 (mixed, as the evaluate stage)",
    )
    parser.add_argument("--scorers", default="masked,cache_copy", help="comma-separated: masked, cache_copy")
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if args.device == "auto" else args.device)
    rows = make_rows(args.rows)
    precisions = precisions_to_measure(args.precision, device.type)
    by_precision = {p: measure(args, p, device, rows) for p in precisions}
    result: dict[str, object] = {
        "backbone": args.backbone,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "rows": len(rows),
        "threads": torch.get_num_threads(),
        "max_tokens_per_forward": args.max_tokens_per_forward,
    }
    for precision, figures in by_precision.items():
        figures.pop("scores")
        result.update({f"{precision}_{k}": v for k, v in figures.items()})
    if {"fp32", "bf16"} <= set(precisions):
        for key in ("scoring_masked_rows_per_s", "scoring_cache_copy_rows_per_s", "generation_rows_per_s"):
            if f"fp32_{key}" in result:
                ratio = result[f"bf16_{key}"] / result[f"fp32_{key}"]
                result[f"bf16_over_fp32_{key.removesuffix('_rows_per_s')}"] = ratio
                print(f"bf16 / fp32 {key.removesuffix('_rows_per_s')}: x{ratio:.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
