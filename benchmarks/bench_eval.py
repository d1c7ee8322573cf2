"""Rows per second of generation vs candidate scoring on the same model and the same prompts.

    python benchmarks/bench_eval.py                         # tiny-random backbone (seconds)
    python benchmarks/bench_eval.py --backbone smollm2-135m --rows 16

Generation: greedy, up to ``--max-new-tokens`` (64, the paper's setting), stopping a row at its
first newline. Scoring: the prompt once, its KV cache shared by the 20 candidate continuations.
Also times generation without the newline stop (always ``max_new_tokens``, as the public code).
Prints one JSON line: rows/s of each and the ratios (scoring / generation; target >= 5).
Scoring costs one prefill plus 20 short continuations; generation one prefill plus the decode
steps. On CPU the prefill of ~400-500-token prompts dominates both, so the ratio is far below the
target there; it grows with the number of decode steps and where decoding is latency-bound (GPU).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.evaluate.generation import GenerationConfigEval, generate_answers
from stages.evaluate.rows import EvalRow
from stages.evaluate.scoring import ScoringConfig, score_candidates

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="tiny-random", help="tiny-random, smollm2-135m or hf:DIR")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from stages.llm.backbone import load_backbone

    backbone = load_backbone(args.backbone)
    model, tokenizer = backbone.model.eval(), backbone.tokenizer
    rows = make_rows(args.rows)
    gen_config = GenerationConfigEval(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    score_config = ScoringConfig(prompt_batch_size=max(1, args.batch_size // 2))
    generate_answers(model, tokenizer, rows[:2], None, gen_config)  # warm-up
    score_candidates(model, tokenizer, rows[:2], None, score_config)

    start = time.perf_counter()
    answers = generate_answers(model, tokenizer, rows, None, gen_config)
    gen_s = time.perf_counter() - start
    start = time.perf_counter()
    full_config = GenerationConfigEval(
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, stop_at_newline=False
    )
    generate_answers(model, tokenizer, rows, None, full_config)
    full_s = time.perf_counter() - start
    start = time.perf_counter()
    score_candidates(model, tokenizer, rows, None, score_config)
    score_s = time.perf_counter() - start
    new_tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)
    result = {
        "backbone": args.backbone,
        "rows": len(rows),
        "prompt_tokens_mean": sum(len(tokenizer(r.prompt)["input_ids"]) for r in rows) / len(rows),
        "generated_tokens_mean": new_tokens / len(rows),
        "generation_rows_per_s": len(rows) / gen_s,
        "scoring_rows_per_s": len(rows) / score_s,
        "generation_no_stop_rows_per_s": len(rows) / full_s,
        "scoring_over_generation": gen_s / score_s,
        "scoring_over_generation_no_stop": full_s / score_s,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
