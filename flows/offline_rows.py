"""Run LLM result rows (fine-tune, then evaluate) straight on the stages: no Prefect, no polars.

For a machine that has a GPU but not the rest of the stack (the lent H100/H200 image has torch,
transformers, peft and pyarrow only). Prepare, pretrain and prompts run where the full stack is;
their artifact directories travel with a plan file; this runs the rows in the plan's order, each in
its own process with a time limit, and leaves per row ``finetune/`` (summary and train log, plus the
trained weights with ``--keep-weights``), ``checkpoints/`` (with ``--keep-weights``: a row stopped by
the budget resumes from them when the same plan runs again over the same output directory) and
``eval-<mode>/`` (metrics and predictions). Feed those
directories to the report stage (``stages.report.run``) to get the table beside the published numbers.

    python -m flows.offline_rows PLAN.json OUT_DIR --budget-s 400

A plan is a JSON list of rows::

    {"name": "ml-llara-sasrec-s0", "row": "LLaRA(SASRec)", "prompts": DIR, "embeddings": DIR,
     "finetune": {"profile": "paper", "domain": "movie", "set": {"max_steps": 100}},  # omit: zero-shot
     "modes": ["scoring", "generation"], "seed": 0, "eval_batch": 16}

Rows that would start after the budget is spent are skipped and listed as such in ``status.jsonl``;
so are rows that finished in an earlier run over the same output directory (their ``row.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

SMALL_FILES = ("summary.json", "train_log.parquet")


def finetune_row(
    name: str,
    prompts: str,
    embeddings: str,
    sr_model: str,
    schedule: str,
    seed: int,
    domain: str,
    settings: dict | None = None,
    profile: str = "paper",
    variants: tuple[str, ...] = (),
) -> dict:
    """A plan row that fine-tunes with ``schedule`` and evaluates both modes, named as the flows name it
    (``variants``: the method variants its prompts and settings use, ``stages.report.method_variants``)."""
    from stages.report.config import llara_row

    return {
        "name": name,
        "row": llara_row(sr_model, schedule, variants),
        "prompts": prompts,
        "embeddings": embeddings,
        "finetune": {"profile": profile, "domain": domain, "set": {**(settings or {}), "schedule": schedule}},
        "modes": ["scoring", "generation"],
        "seed": seed,
        "min_s": 60,
    }


def run_row(job: dict, out: Path, keep_weights: bool) -> dict:
    """Fine-tune (unless zero-shot) and evaluate one row in this process; return its summary."""
    from stages.evaluate import EvaluateConfig
    from stages.evaluate.evaluate import run as evaluate
    from stages.llm.finetune import run as finetune
    from stages.llm.profiles import profile

    seed = int(job.get("seed", 0))
    inputs: dict[str, Path | None] = {"prompts": Path(job["prompts"]), "embeddings": Path(job["embeddings"])}
    result: dict = {"name": job["name"], "row": job["row"]}
    backbone = job.get("backbone", "smollm2-135m")
    if job.get("finetune"):
        spec = job["finetune"]
        config = replace(profile(spec["profile"], spec["domain"], **spec.get("set", {})), seed=seed)
        backbone = config.backbone
        model_dir = out / "finetune"
        start = time.perf_counter()
        summary = finetune(
            config,
            {"prompts": inputs["prompts"], "embeddings": inputs["embeddings"]},
            model_dir,
            checkpoint_dir=out / "checkpoints",
            resume=True,  # a row rerun with its carried checkpoints continues where it stopped
        )
        result["finetune"] = {**summary, "wall_s": time.perf_counter() - start}
        inputs["model"] = model_dir
    else:
        inputs["model"] = None
    result["eval"] = {}
    for mode in job.get("modes", ["scoring"]):
        config = EvaluateConfig(
            backbone=backbone, mode=mode, row=job["row"], seed=seed, batch_size=int(job.get("eval_batch", 16))
        )
        start = time.perf_counter()
        summary = evaluate(config, {k: v for k, v in inputs.items() if v is not None}, out / f"eval-{mode}")
        result["eval"][mode] = {**summary["metrics"], "wall_s": time.perf_counter() - start}
    if not keep_weights:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        if (out / "finetune").is_dir():
            for path in (out / "finetune").iterdir():
                if path.name not in SMALL_FILES:
                    path.unlink() if path.is_file() else shutil.rmtree(path)
    return result


def run_plan(plan: list[dict], out: Path, budget_s: float, keep_weights: bool) -> None:
    """Each row in a child process (a crash or hang loses one row), until the budget is spent."""
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + budget_s
    status = out / "status.jsonl"
    for job in plan:
        left = deadline - time.monotonic()
        record: dict = {"name": job["name"], "row": job["row"]}
        if (out / job["name"] / "row.json").is_file():  # finished in an earlier lease: not trained twice
            record["status"] = "done earlier (remove its directory to run it again)"
        elif left < float(job.get("min_s", 30)):
            record["status"] = f"skipped: {left:.0f}s of the budget left"
        else:
            row_dir = out / job["name"]
            command = [sys.executable, "-m", "flows.offline_rows", "--row", json.dumps(job), str(row_dir)]
            if keep_weights:
                command.append("--keep-weights")
            start = time.perf_counter()
            try:
                done = subprocess.run(command, timeout=left, check=False)
                record["status"] = "ok" if done.returncode == 0 else f"failed: exit {done.returncode}"
            except subprocess.TimeoutExpired:
                record["status"] = f"timed out after {left:.0f}s"
            record["wall_s"] = round(time.perf_counter() - start, 1)
        with status.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("plan", help="plan JSON file (or, with --row, one row as JSON text)")
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--budget-s", type=float, default=3600.0, help="seconds after which no row starts")
    parser.add_argument("--row", action="store_true", help="run the single row given as JSON (child mode)")
    parser.add_argument(
        "--keep-weights", action="store_true", help="keep the trained LoRA/projector weights and checkpoints"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.row:
        result = run_row(json.loads(args.plan), args.out, args.keep_weights)
        (args.out / "row.json").write_text(json.dumps(result, indent=2, default=str))
        return
    plan = json.loads(Path(args.plan).read_text())
    run_plan(plan, args.out, args.budget_s, args.keep_weights)


if __name__ == "__main__":
    main()
