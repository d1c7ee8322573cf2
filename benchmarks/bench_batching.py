"""How to cut the rows of an optimizer step into forward passes: rows, a token budget, or packing.

The same train rows go through forward + backward (LoRA, text prompts) in three layouts:

- ``rows`` (what the finetune stage does): rows sorted by length, a fixed number per micro-batch,
  right-padded, the causal mask alone (``Batch.loss``);
- ``tokens``: rows sorted by length, each micro-batch filled up to a budget of padded tokens (the
  fixed micro-batch's mean size), so short rows go in larger batches;
- ``packed``: rows concatenated, padding-free, into sequences of at most ``--pack-length`` tokens,
  positions restarting per row, under a 4-D block-diagonal causal mask (sdpa without
  varlen kernels has no other way to keep packed rows apart).

Each layout's summed answer loss and LoRA gradients must equal the ``rows`` layout's (checked, so a
faster layout that computes something else cannot win). Figures: real tokens/s of each layout,
its padded or attended tokens, and the ratios to ``rows``; the last line is one JSON object.

    python benchmarks/bench_batching.py --backbone smollm2-135m --rows 32 --micro-batch 8
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_finetune import synthetic_inputs  # noqa: E402

from stages.item_embeddings import load_item_embeddings  # noqa: E402
from stages.llm import prompts  # noqa: E402
from stages.llm.backbone import load_backbone  # noqa: E402
from stages.llm.config import LoraSettings  # noqa: E402
from stages.llm.data import PromptData, pad_batch  # noqa: E402
from stages.llm.model import PromptLM, build_llara_model  # noqa: E402
from stages.llm.templates import IGNORE_INDEX  # noqa: E402

Row = tuple[list[int], int]  # (input ids of prompt + answer, prompt length)


def encoded_rows(data: PromptData, n: int) -> list[Row]:
    candidates = data.epoch_candidates(0)
    rows = []
    for i in range(n):
        batch = data.train_batch(np.array([i]), candidates, template=0, hybrid=False)
        ids = batch.input_ids[0].tolist()
        prompt_length = int(batch.logit_positions[0, 0]) + 1  # the first answer token's position
        rows.append((ids, prompt_length))
    return rows


def padded_step(lm: PromptLM, group: list[Row], pad_id: int) -> tuple[torch.Tensor, int, int]:
    """(summed answer loss, real tokens, padded tokens) of one right-padded micro-batch."""
    batch = pad_batch(
        [r[0] for r in group],
        [r[1] for r in group],
        [[]] * len(group),
        [[]] * len(group),
        pad_id,
        hybrid=False,
    )
    answer_tokens = int((batch.targets != IGNORE_INDEX).sum())
    loss = lm(batch.input_ids, None, batch.logit_positions, batch.targets) * answer_tokens
    return loss, sum(len(r[0]) for r in group), batch.input_ids.numel()


def packed_step(lm: PromptLM, group: list[list[Row]], pad_id: int) -> tuple[torch.Tensor, int, int]:
    """The same for packed sequences: ``group`` is a list of sequences, each a list of rows."""
    width = max(sum(len(r[0]) for r in seq) for seq in group)
    ids = torch.full((len(group), width), pad_id)  # (N, W)
    positions = torch.zeros((len(group), width), dtype=torch.long)
    segment = torch.full((len(group), width), -1)
    gather, targets = [], []
    for n, seq in enumerate(group):
        start = 0
        for k, (row, prompt_length) in enumerate(seq):
            end = start + len(row)
            ids[n, start:end] = torch.tensor(row)
            positions[n, start:end] = torch.arange(len(row))
            segment[n, start:end] = k
            for p in range(prompt_length - 1, len(row) - 1):  # position p predicts token p + 1
                gather.append((n, start + p))
                targets.append(row[p + 1])
            start = end
    same = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    allowed = causal & (same | torch.eye(width, dtype=torch.bool))  # padding sees itself only
    mask = torch.zeros(allowed.shape).masked_fill_(~allowed, torch.finfo(torch.float32).min)[:, None]
    emb = lm.llm.get_input_embeddings()(ids).requires_grad_(True)  # as PromptLM in training
    out = lm.llm(inputs_embeds=emb, attention_mask=mask, position_ids=positions, use_cache=False)
    rows_index, cols = torch.tensor(gather).T
    logits = out.logits[rows_index, cols].float()  # (M, V)
    loss = F.cross_entropy(logits, torch.tensor(targets), reduction="sum")
    return loss, sum(len(r[0]) for seq in group for r in seq), ids.numel()


def layouts(rows: list[Row], micro: int, pack_length: int) -> dict[str, list]:
    by_length = sorted(rows, key=lambda r: len(r[0]))
    fixed = [by_length[i : i + micro] for i in range(0, len(by_length), micro)]
    budget = sum(len(r[0]) for r in rows) // max(1, len(fixed))  # the fixed micro-batch's mean size
    budgeted, current = [], []
    for row in by_length:
        if current and (len(current) + 1) * len(row[0]) > budget:
            budgeted.append(current)
            current = []
        current.append(row)
    budgeted.append(current)
    sequences, current, used = [], [], 0
    for row in rows:  # packing needs no sorting: nothing is padded inside a sequence
        if current and used + len(row[0]) > pack_length:
            sequences.append(current)
            current, used = [], 0
        current.append(row)
        used += len(row[0])
    sequences.append(current)
    per_pass = max(1, round(budget / pack_length))  # about the same tokens per forward as the others
    packed = [sequences[i : i + per_pass] for i in range(0, len(sequences), per_pass)]
    return {"rows": fixed, "tokens": budgeted, "packed": packed}


def run_layout(
    lm: PromptLM, name: str, groups: list, pad_id: int
) -> tuple[float, int, int, list[torch.Tensor]]:
    """One pass of forward + backward over every group: (summed loss, real, padded, grads)."""
    lm.zero_grad(set_to_none=True)
    total, real, padded = 0.0, 0, 0
    step = packed_step if name == "packed" else padded_step
    for group in groups:
        loss, r, p = step(lm, group, pad_id)
        loss.backward()
        total, real, padded = total + float(loss), real + r, padded + p
    grads = [p.grad.clone() for p in lm.parameters() if p.requires_grad]
    return total, real, padded, grads


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--backbone", default="tiny-random")
    parser.add_argument("--rows", type=int, default=32, help="train rows (one optimizer step's worth)")
    parser.add_argument("--micro-batch", type=int, default=8, help="rows per forward of the rows layout")
    parser.add_argument("--pack-length", type=int, default=1024, help="longest packed sequence")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per layout (median)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-batching-"))
    dataset, embeddings = synthetic_inputs(work)
    (work / "prompts").mkdir()
    prompts.run(prompts.PromptsConfig(backbone=args.backbone), {"dataset": dataset}, work / "prompts")
    backbone = load_backbone(args.backbone, dtype=torch.float32)
    items = load_item_embeddings(embeddings, n_items=300)
    model = build_llara_model(backbone, items, LoraSettings(dropout=0.0), seed=0)
    data = PromptData(work / "prompts", backbone.tokenizer, 0, args.rows)
    lm = PromptLM(model.llm, backbone.tokens).train()
    pad_id = int(backbone.tokenizer.pad_token_id)
    rows = encoded_rows(data, min(args.rows, data.train_rows))
    plans = layouts(rows, args.micro_batch, args.pack_length)
    run_layout(lm, "rows", plans["rows"][:1], pad_id)  # one-off costs (allocator, kernels) before any timing
    reference: tuple[float, list[torch.Tensor]] | None = None
    result: dict = {"backbone": args.backbone, "rows": len(rows), "threads": torch.get_num_threads()}
    for name, groups in plans.items():
        total, real, padded, grads = run_layout(lm, name, groups, pad_id)  # warm-up, and the check
        if reference is None:
            reference = (total, grads)
        pairs = zip(grads, reference[1], strict=True)
        gap = max(float((g - r).abs().max() / (r.abs().max() + 1e-12)) for g, r in pairs)
        if abs(total - reference[0]) > 1e-4 * abs(reference[0]) or gap > 1e-3:
            raise SystemExit(f"{name}: loss {total} vs {reference[0]}, gradient gap {gap:.1e}: another step")
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run_layout(lm, name, groups, pad_id)
            seconds.append(time.perf_counter() - start)
        median = sorted(seconds)[len(seconds) // 2]
        result[name] = {
            "forwards": len(groups),
            "tokens_per_s": real / median,
            "seconds": median,
            "computed_tokens": padded,
            "loss_sum": total,
            "max_grad_gap": gap,
        }
        print(
            f"{name:>7}: {len(groups):3d} forwards, {real / median:8.1f} tokens/s, "
            f"{padded} tokens computed for {real}, gradient gap {gap:.1e}",
            flush=True,
        )
    for name in ("tokens", "packed"):
        result[f"{name}_over_rows"] = result[name]["tokens_per_s"] / result["rows"]["tokens_per_s"]
        print(f"{name} / rows: x{result[f'{name}_over_rows']:.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
