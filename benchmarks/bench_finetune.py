"""Training throughput of the finetune stage vs a plain ``transformers.Trainer`` on the same LoRA steps.

Both train the same backbone with the same LoRA settings, micro-batch and number of optimizer steps on
the same train rows (text-only prompts, so the baseline needs no custom model), and report real
(non-padding) tokens per second and the fraction of padding tokens. The baseline is what a plain
setup does: random order, dynamic padding to the longest row of each batch. Ours adds length-grouped
batching (and DeepSpeed ZeRO). On a GPU it also reports MFU (6 * params * tokens/s over peak bf16).

    python benchmarks/bench_finetune.py --backbone tiny-random --steps 20
    python benchmarks/bench_finetune.py --prompts DIR --embeddings DIR --backbone smollm2-135m --steps 6

Without ``--prompts`` a synthetic MovieLens-like dataset (histories of 3-10 items) is built in a temp dir.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.item_embeddings import save_item_embeddings  # noqa: E402
from stages.llm import prompts  # noqa: E402
from stages.llm.backbone import load_backbone  # noqa: E402
from stages.llm.data import PromptData  # noqa: E402
from stages.llm.finetune import FinetuneConfig, FinetuneRecipe  # noqa: E402
from stages.llm.model import LoraSettings  # noqa: E402
from stages.seqrec.data import EXAMPLE_COLUMNS, write_prepared

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
WORDS = ("star", "night", "city", "dark", "king", "dream", "love", "war", "heat", "story", "game")


def synthetic_inputs(root: Path, n_items: int = 300, users: int = 60, seed: int = 0) -> tuple[Path, Path]:
    """A prepared dataset + random 64-d embeddings with title lengths and history lengths that vary."""
    rng = np.random.default_rng(seed)
    data, emb = root / "dataset", root / "embeddings"
    emb.mkdir(parents=True)
    titles = [
        " ".join(rng.choice(WORDS, size=int(rng.integers(1, 7)))).title() + f" {i}" for i in range(n_items)
    ]
    rows: dict[str, list] = {c: [] for c in EXAMPLE_COLUMNS}
    for user in range(users):
        split = "train" if user < users - 4 else ("val" if user < users - 2 else "test")
        seq = rng.choice(n_items, size=14, replace=False).tolist()
        for t in range(3, 14) if split == "train" else [13]:
            history = seq[max(0, t - 10) : t]
            cands = None
            if split != "train":
                pool = np.setdiff1d(np.arange(n_items), history + [seq[t]])
                cands = rng.choice(pool, size=19, replace=False).tolist() + [seq[t]]
            for key, value in zip(EXAMPLE_COLUMNS, (split, user, history, seq[t], cands), strict=True):
                rows[key].append(value)
    write_prepared(data, titles, rows, name="synthetic", seed=seed)
    save_item_embeddings(torch.randn(n_items, 64), emb, model="random")
    return data, emb


def run_ours(config: FinetuneConfig, prompts_dir: Path, embeddings: Path, out: Path) -> dict:
    recipe = FinetuneRecipe(config, prompts_dir, embeddings, out)
    recipe.setup()
    recipe.train()
    log = recipe.log[1:]  # the first step pays one-off costs in both runs
    seconds = sum(r["seconds"] for r in log)
    real, padded = sum(r["tokens"] for r in log), sum(r["padded_tokens"] for r in log)
    return {
        "tokens_per_s": real / seconds,
        "padding_fraction": 1 - real / padded,
        "seconds": seconds,
        "steps": len(log),
        "params": sum(p.numel() for p in recipe.model.parameters()),
    }


def run_hf_trainer(config: FinetuneConfig, prompts_dir: Path, out: Path) -> dict:
    """A plain transformers.Trainer + peft LoRA on the same rows, text prompts, dynamic padding."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments

    backbone = load_backbone(config.backbone)
    data = PromptData(prompts_dir, backbone.tokenizer, config.seed, config.max_train_rows)
    candidates = data.epoch_candidates(0)
    rows = np.arange(data.train_rows)
    examples = []
    for start in range(0, len(rows), 64):
        batch = data.train_batch(rows[start : start + 64], candidates, template=0, hybrid=False)
        for ids, mask, labels in zip(batch.input_ids, batch.attention_mask, batch.labels, strict=True):
            n = int(mask.sum())
            examples.append({"input_ids": ids[:n], "labels": labels[:n]})
    pad = int(backbone.tokenizer.pad_token_id)
    counts: dict[str, list[int]] = {"real": [], "padded": []}  # per built batch (= per step here)

    def collate(features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), pad)  # (B, L)
        labels = torch.full((len(features), width), -100)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for b, f in enumerate(features):
            n = len(f["input_ids"])
            ids[b, :n], labels[b, :n], mask[b, :n] = f["input_ids"], f["labels"], 1
        counts["real"].append(int(mask.sum()))
        counts["padded"].append(mask.numel())
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    lora = config.lora
    model = get_peft_model(
        backbone.model,
        LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.targets),
            task_type="CAUSAL_LM",
        ),
    )
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
            times.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
            times[-1] = time.perf_counter() - times[-1]

    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=config.micro_batch,
        gradient_accumulation_steps=config.grad_accum,
        max_steps=config.max_steps or 10,
        learning_rate=config.lr,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(),
        seed=config.seed,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=examples, data_collator=collate, callbacks=[StepTimer()]
    )
    trainer.train()
    accum = config.grad_accum
    real, padded = sum(counts["real"][accum:]), sum(counts["padded"][accum:])  # skip step 1, as for ours
    seconds = sum(times[1:])
    return {
        "tokens_per_s": real / seconds,
        "padding_fraction": 1 - real / padded,
        "seconds": seconds,
        "steps": len(times) - 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="tiny-random")
    parser.add_argument("--prompts", type=Path, help="prompts artifact (built for --backbone)")
    parser.add_argument("--embeddings", type=Path)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--json-out", type=Path, help="also write the result JSON here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    if args.prompts is None:
        dataset, embeddings = synthetic_inputs(work)
        prompts_dir = work / "prompts"
        prompts_dir.mkdir()
        prompts.run(prompts.PromptsConfig(backbone=args.backbone), {"dataset": dataset}, prompts_dir)
    else:
        prompts_dir, embeddings = args.prompts, args.embeddings
    config = FinetuneConfig(
        backbone=args.backbone,
        schedule="text",
        epochs=1,
        micro_batch=args.micro_batch,
        grad_accum=1,
        max_steps=args.steps,
        max_train_rows=args.rows,
        val_rows=0,
        lora=LoraSettings(dropout=0.0),
    )
    ours = run_ours(config, prompts_dir, embeddings, work / "ours")
    baseline = run_hf_trainer(replace(config), prompts_dir, work / "hf")
    result = {
        "backbone": args.backbone,
        "micro_batch": args.micro_batch,
        "ours": ours,
        "hf_trainer": baseline,
        "speedup_tokens_per_s": ours["tokens_per_s"] / baseline["tokens_per_s"],
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }
    if torch.cuda.is_available():
        peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in result["device"]), None)
        if peak:
            result["peak_bf16_flops"] = peak
            for run in (ours, baseline):
                run["mfu"] = 6 * ours["params"] * run["tokens_per_s"] / peak
                # LoRA freezes the base weights, so their weight-gradient matmuls (2N of the 6N) never run.
                run["mfu_executed_4n"] = 4 * ours["params"] * run["tokens_per_s"] / peak
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
