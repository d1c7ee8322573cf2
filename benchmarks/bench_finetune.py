"""Training throughput of the finetune stage vs a plain ``transformers.Trainer`` on the same LoRA steps.

Both train the same backbone with the same LoRA settings, effective batch and number of optimizer
steps on the same train rows (text-only prompts, so the baseline needs no custom model). Each side
runs at every ``--micro-batches`` value (gradient accumulation fills the effective batch), every
run in a child process of its own (clean peak memory, one DeepSpeed engine per process), and each
side is reported at its fastest micro-batch that fits. The baseline is what a plain setup does:
random order, dynamic padding to the longest row of each batch, the loss through ``labels=``.
Ours adds length-grouped batches, logits at the answer positions only, batches built from cached
pieces in a background thread, and DeepSpeed ZeRO (``--zero-stages`` measures several).

Each ``--precision`` (default ``native``: fp32, and bf16 where this machine multiplies bf16
natively, ``stages.precision.native_precisions``; both in the same run) runs both sides: ours in bf16 is the
stage's mixed precision (``stages.llm.mixed_precision``), the Trainer's is its documented AMP
(``TrainingArguments(bf16=True)``, on a CPU with ``use_cpu=True``).

Figures: real (non-padding) tokens/s, padding fraction, peak memory (GPU: max allocated; CPU: peak
RSS of the child), the ratios ours bf16 / ours fp32 and ours / Trainer per precision, and the
matmul roofline: the FLOP/s of a large bf16 (and fp32) GEMM measured in the same run, against which
the training step's 4N FLOP per token (what LoRA executes: the frozen weights get no weight
gradient; N = the backbone's parameters) is set; on a known GPU also the MFU by 4N and 6N.

    python benchmarks/bench_finetune.py --backbone tiny-random --steps 6
    python benchmarks/bench_finetune.py --backbone smollm2-135m --effective-batch 8 \
        --micro-batches 4,8 --steps 3
    python benchmarks/bench_finetune.py --backbone random:llama-2-7b --effective-batch 128 \
        --micro-batches 4,8,16 --zero-stages 0,2 --gradient-checkpointing          # GPU
    python benchmarks/bench_finetune.py --backbone random:smollm2-135m --precision bf16 \
        --micro-batches 16,32,64 --profile-steps 4                                # GPU, with kernels

``--sides ours`` skips the Trainer baseline (a 7B Trainer run doubles the time); ``--profile-steps N``
then runs N steps of ours at its fastest micro-batch under ``torch.profiler`` and lists the top
kernels by self time (GPU time on a GPU).

Without ``--prompts`` a synthetic MovieLens-like dataset (histories of 3-10 items) is built in a temp
dir; ``--shape long`` makes every history 10 items long, the length of LastFM's rows, for the
``long``/``cpu`` profiles' step (micro-batch 4 x accumulation 4):

    python benchmarks/bench_finetune.py --backbone smollm2-135m --shape long --effective-batch 16 \
        --micro-batches 4 --steps 4 --sides ours --profile-steps 3

The last line of output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.item_embeddings import save_item_embeddings  # noqa: E402
from stages.llm import prompts  # noqa: E402
from stages.llm.backbone import load_backbone  # noqa: E402
from stages.llm.config import LoraSettings, resolve_zero_stage  # noqa: E402
from stages.llm.data import PromptData  # noqa: E402
from stages.llm.finetune import FinetuneConfig, FinetuneRecipe  # noqa: E402
from stages.precision import cpu_description, precisions_to_measure  # noqa: E402
from stages.seqrec.data import EXAMPLE_COLUMNS, write_prepared  # noqa: E402

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
WORDS = ("star", "night", "city", "dark", "king", "dream", "love", "war", "heat", "story", "game")


def synthetic_inputs(
    root: Path, n_items: int = 300, users: int = 60, seed: int = 0, min_history: int = 3
) -> tuple[Path, Path]:
    """A prepared dataset + random 64-d embeddings with title lengths that vary, and history lengths
    from ``min_history`` to 10 (10: every row as long as a LastFM row)."""
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
        for t in range(max(3, min_history), 14) if split == "train" else [13]:
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


def _peak_memory() -> int:
    """Peak bytes of this process: GPU memory allocated by torch, else the resident set size."""
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_ours(config: FinetuneConfig, prompts_dir: Path, embeddings: Path, out: Path) -> dict:
    recipe = FinetuneRecipe(config, prompts_dir, embeddings, out)
    recipe.setup()
    recipe.train()
    log = recipe.log[1:]  # the first step pays one-off costs in both runs
    seconds = sum(r["seconds"] for r in log)
    real, padded = sum(r["tokens"] for r in log), sum(r["padded_tokens"] for r in log)
    return {"tokens_per_s": real / seconds, "padding_fraction": 1 - real / padded, "seconds": seconds}


def profile_ours(config: FinetuneConfig, prompts_dir: Path, embeddings: Path, out: Path) -> dict:
    """Where the training steps spend their time: torch.profiler over the steps (setup excluded),
    kernels ranked by self time on the GPU (the CPU's ops without one)."""
    from torch.profiler import ProfilerActivity, profile

    recipe = FinetuneRecipe(config, prompts_dir, embeddings, out)
    recipe.setup()
    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        recipe.train()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, key) > 0]
    total = sum(getattr(e, key) for e in events)
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    top = [
        {"name": e.key, "calls": e.count, "self_ms": getattr(e, key) / 1e3, "share": getattr(e, key) / total}
        for e in events[:15]
    ]
    return {"clock": "gpu" if cuda else "cpu", "total_ms": total / 1e3, "steps": len(recipe.log), "top": top}


def run_hf_trainer(config: FinetuneConfig, prompts_dir: Path, out: Path) -> dict:
    """A plain transformers.Trainer + peft LoRA on the same rows, text prompts, dynamic padding."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments

    backbone = load_backbone(config.backbone, dtype=torch.float32)
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

    def collate(features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), pad)  # (B, L)
        labels = torch.full((len(features), width), -100)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for b, f in enumerate(features):
            n = len(f["input_ids"])
            ids[b, :n], labels[b, :n], mask[b, :n] = f["input_ids"], f["labels"], 1
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
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    # Tokens are counted where the model runs, per optimizer step: the collate function also sees
    # the batch that accelerate's loader fetches ahead (to detect the end), which is never trained.
    times: list[float] = []
    steps: list[dict[str, int]] = []
    current = {"real": 0, "padded": 0}

    def count_tokens(module, args, kwargs):  # noqa: ANN001, ANN202
        mask = kwargs["attention_mask"]
        current["real"] += int(mask.sum())
        current["padded"] += mask.numel()

    model.register_forward_pre_hook(count_tokens, with_kwargs=True)

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
            current.update(real=0, padded=0)
            times.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[-1] = time.perf_counter() - times[-1]
            steps.append(dict(current))

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
        bf16=config.precision == "bf16",
        seed=config.seed,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=examples, data_collator=collate, callbacks=[StepTimer()]
    )
    trainer.train()
    real = sum(step["real"] for step in steps[1:])  # skip step 1, as for ours
    padded = sum(step["padded"] for step in steps[1:])
    seconds = sum(times[1:])
    return {"tokens_per_s": real / seconds, "padding_fraction": 1 - real / padded, "seconds": seconds}


def child(spec: dict) -> None:
    """One measurement in this process; prints its JSON (the parent reads the last line)."""
    if spec["side"] == "gemm":  # in a child too: the same threads and a clean process
        print(json.dumps({p: gemm_flops(DTYPES[p]) for p in spec["precisions"]}))
        return
    if spec.get("attention") == "sdpa":  # the stage's matmul attention off (stages.llm.attention)
        import stages.llm.attention

        stages.llm.attention.MATMUL_MAX_LENGTH = 0
    config = FinetuneConfig(**{**spec["config"], "lora": LoraSettings(dropout=spec["lora_dropout"])})
    prompts_dir, out = Path(spec["prompts"]), Path(spec["out"])
    if spec["side"] == "profile":
        print(json.dumps(profile_ours(config, prompts_dir, Path(spec["embeddings"]), out)))
        return
    # The GEMM right before and right after the steps: a shared machine's speed drifts by tens of
    # percent over an hour, so the roofline a run is set against is the one it ran under.
    dtype = DTYPES[config.precision]
    before = gemm_flops(dtype, seconds=1.5)
    try:
        if spec["side"] == "ours":
            result = run_ours(config, prompts_dir, Path(spec["embeddings"]), out)
        else:
            result = run_hf_trainer(config, prompts_dir, out)
    except torch.OutOfMemoryError:
        result = {"oom": True}
    result["gemm_bracket_flops"] = [before, gemm_flops(dtype, seconds=1.5)]
    result["peak_memory_bytes"] = _peak_memory()
    print(json.dumps(result))


DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def gemm_flops(dtype: torch.dtype, size: int = 4096, seconds: float = 3.0) -> float:
    """FLOP/s of ``size`` x ``size`` matmuls in ``dtype`` on this process's device and threads."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 * count / (time.perf_counter() - start)


def measure(side: str, config: dict, prompts_dir: Path, embeddings: Path, out: Path) -> dict:
    spec = {"side": side, "config": config, "prompts": str(prompts_dir), "embeddings": str(embeddings)}
    spec.update(
        out=str(out), lora_dropout=config.pop("lora_dropout", 0.1), attention=config.pop("attention", None)
    )
    if side == "gemm":
        spec = {"side": side, "precisions": config["precisions"]}
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0][:300]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def base_parameters(spec: str) -> int:
    """N for the MFU: the backbone's parameters (meta device, so a 7B shape costs no memory)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from stages.llm.backbone import resolve_backbone_dir

    config = AutoConfig.from_pretrained(resolve_backbone_dir(spec))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="tiny-random")
    parser.add_argument("--prompts", type=Path, help="prompts artifact (built for --backbone)")
    parser.add_argument("--embeddings", type=Path)
    parser.add_argument(
        "--steps", type=int, default=6, help="optimizer steps per run (the first is not timed)"
    )
    parser.add_argument("--effective-batch", type=int, default=128 if torch.cuda.is_available() else 8)
    parser.add_argument("--micro-batches", default="2,4,8", help="comma-separated micro-batch sizes to try")
    parser.add_argument(
        "--zero-stages", default="auto", help="comma-separated ZeRO stages for ours (auto: the default)"
    )
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument(
        "--precision",
        default="native",
        help="native (fp32, and bf16 where the hardware multiplies it natively) or comma-separated: "
        "fp32, bf16",
    )
    parser.add_argument(
        "--lora-dropout", type=float, default=0.1, help="LoRA dropout of both sides (the stage's default 0.1)"
    )
    parser.add_argument("--sides", default="ours,hf_trainer", help="comma-separated: ours, hf_trainer")
    parser.add_argument(
        "--attention",
        default="auto",
        help="ours' attention, comma-separated: auto (the stage's choice: stages.llm.attention), sdpa",
    )
    parser.add_argument(
        "--profile-steps",
        type=int,
        default=0,
        help="then profile this many steps of ours at its fastest micro-batch (torch.profiler, top kernels)",
    )
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument(
        "--shape",
        choices=("short", "long"),
        default="short",
        help="synthetic rows without --prompts: histories of 3-10 items (short) or all 10 (long, LastFM's)",
    )
    parser.add_argument("--json-out", type=Path, help="also write the result JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    if args.prompts is None:
        dataset, embeddings = synthetic_inputs(work, min_history=10 if args.shape == "long" else 3)
        prompts_dir = work / "prompts"
        prompts_dir.mkdir()
        prompts.run(prompts.PromptsConfig(backbone=args.backbone), {"dataset": dataset}, prompts_dir)
    else:
        prompts_dir, embeddings = args.prompts, args.embeddings
    micro_sizes = [int(m) for m in args.micro_batches.split(",") if args.effective_batch % int(m) == 0]
    runs: list[dict] = []
    zero_stages = [None if z == "auto" else int(z) for z in args.zero_stages.split(",")]
    precisions = precisions_to_measure(args.precision)
    attentions = args.attention.split(",")
    plan = [
        (p, side, zero, attention)
        for p in precisions
        for side in args.sides.split(",")
        for zero in (zero_stages if side == "ours" else [None])
        for attention in (attentions if side == "ours" else ["auto"])
    ]
    for (precision, side, zero, attention), micro in itertools.product(plan, micro_sizes):
        config = {
            "attention": attention,
            "precision": precision,
            "lora_dropout": args.lora_dropout,
            "backbone": args.backbone,
            "schedule": "text",
            "epochs": 1,
            "micro_batch": micro,
            "grad_accum": args.effective_batch // micro,
            "max_steps": args.steps,
            "max_train_rows": args.rows,
            "val_rows": 0,
            "gradient_checkpointing": args.gradient_checkpointing,
            **({"zero_stage": zero} if zero is not None else {}),
        }
        name = f"{precision}-{side}-{zero}-{attention}-{micro}"
        result = measure(side, config, prompts_dir, embeddings, work / name)
        used = resolve_zero_stage(zero, 1, False) if side == "ours" else None
        runs.append(
            {
                "precision": precision,
                "side": side,
                "zero_stage": used,
                "micro_batch": micro,
                "attention": attention,
                **result,
            }
        )
        runs[-1]["config"] = {k: v for k, v in config.items() if k not in ("lora_dropout", "attention")}
        print(json.dumps(runs[-1]), flush=True)
    gemm = measure("gemm", {"precisions": precisions}, prompts_dir, embeddings, work)
    print("GEMM 4096^2: " + ", ".join(f"{p} {flops / 1e9:.0f} GFLOP/s" for p, flops in gemm.items()))
    print(f"CPU: {cpu_description()}")
    n_params = base_parameters(args.backbone)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in device), None)
    for run in runs:
        if "tokens_per_s" in run:
            flops = 4 * n_params * run["tokens_per_s"]
            run["roofline_4n"] = flops / gemm[run["precision"]]
            run["roofline_4n_bracketed"] = flops / mean(run["gemm_bracket_flops"])
            if peak:
                run["mfu_4n"] = flops / peak
                run["mfu_6n"] = 6 * n_params * run["tokens_per_s"] / peak
    best: dict[str, dict | None] = {}
    for precision in precisions:
        for side in ("ours", "hf_trainer"):
            ok = [r for r in runs if (r["precision"], r["side"]) == (precision, side) and "tokens_per_s" in r]
            best[f"{side}_{precision}"] = max(ok, key=lambda r: r["tokens_per_s"]) if ok else None

    def ratio(a: str, b: str) -> float | None:
        if best.get(a) and best.get(b):
            return best[a]["tokens_per_s"] / best[b]["tokens_per_s"]
        return None

    result = {
        "backbone": args.backbone,
        "device": device,
        "cpu": cpu_description(),
        "params": n_params,
        "effective_batch": args.effective_batch,
        "steps": args.steps,
        "gemm_bf16_flops": gemm.get("bf16"),
        "gemm_fp32_flops": gemm.get("fp32"),
        **best,
        **{f"ours_over_trainer_{p}": ratio(f"ours_{p}", f"hf_trainer_{p}") for p in precisions},
        "ours_bf16_over_ours_fp32": ratio("ours_bf16", "ours_fp32"),
        "runs": runs,
    }
    for key in [k for k in result if k.startswith(("ours_over", "ours_bf16_over"))]:
        if result[key] is not None:
            print(f"{key}: x{result[key]:.2f}")
    for key in ("ours_bf16", "ours_fp32"):
        if best.get(key):
            tokens, share = best[key]["tokens_per_s"], best[key]["roofline_4n"]
            bracket, near = best[key]["gemm_bracket_flops"], best[key]["roofline_4n_bracketed"]
            print(
                f"{key}: {tokens:.0f} tok/s, {share:.0%} of the GEMM roofline by 4N; "
                f"{near:.0%} of the GEMM right before and after it ({bracket[0] / 1e9:.0f}, "
                f"{bracket[1] / 1e9:.0f} GFLOP/s)"
            )
    measured = [best[f"ours_{p}"] for p in precisions if best.get(f"ours_{p}")]
    fastest = max(measured, key=lambda r: r["tokens_per_s"]) if measured else None
    if args.profile_steps and fastest:
        spec = {**fastest["config"], "max_steps": args.profile_steps, "lora_dropout": args.lora_dropout}
        spec["attention"] = fastest["attention"]
        result["profile"] = measure("profile", spec, prompts_dir, embeddings, work / "profile")
        for row in result["profile"].get("top", []):
            print(f"{row['share']:6.1%} {row['self_ms']:10.1f} ms {row['calls']:7d}x  {row['name'][:90]}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
