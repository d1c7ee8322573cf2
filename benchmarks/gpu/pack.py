"""Pack what the lent GPU machine lacks into two loads that each fit one call's 64 MiB working tree.

The machine's image has torch, transformers, peft, accelerate, pyarrow and sentencepiece, but not
DeepSpeed, pydantic, hjson, gguf, polars or Prefect, and it has no network (``wheels.sh`` fetches the
wheels it needs). The SmolLM2 GGUF (94 MiB) is larger than one load, so it travels in two parts:

- ``.dev/a`` with the first call (``setup.sh``): the wheels, the ``random:`` backbones' cache
  directories (config and tokenizer, built here, so nothing is trained there), GGUF part 1;
- ``.dev/b`` with the second (``rows.sh``, on the same warm machine): GGUF part 2 and its sha256,
  the prompts and item-embedding artifacts, and the row plan for ``flows.offline_rows``.

Part 1 is as large as load a leaves room for, so that load b fits too. ``.dev/`` and ``.whl/`` are
git-ignored.

The plan fine-tunes on the ``cpu`` profile by default, the recipe chosen on validation (its own
schedule, ``direct``, for LLaRA(SASRec), then ``text`` for TALLRec on the same rows); its prompts
must put the item token first (``llara stage prompts --profile cpu``), which the rows are named
for. On a GPU, keep its effective batch of 16 as one micro-batch and size ``max_steps`` to the
rows' budget (the scheduler ends where the run ends):

    bash benchmarks/gpu/wheels.sh
    python benchmarks/gpu/pack.py --wheels .whl --data lastfm:artist:PROMPTS_DIR:EMBEDDINGS_DIR \\
        --set micro_batch=16 --set grad_accum=1 --set max_steps=1200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from flows.offline_rows import finetune_row
from flows.profiles import PipelineProfile, pipeline_profile
from stages.inputs import read_json
from stages.llm.backbone import resolve_backbone_dir, smollm2_gguf
from stages.report.config import method_variants

LOAD_LIMIT = 63 * 2**20  # a call's working tree may hold 64 MiB (the device tool's README)
MARGIN = 2**20  # files written before the call (logs) and rounding
DATA = "/tmp/llara-data"  # where rows.sh puts .dev/b/data on the GPU machine
RANDOM_SHAPES = ("random:smollm2-135m", "random:llama-2-7b")


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def repo_bytes() -> int:
    """What travels with every call besides the carried loads: the tracked and untracked files."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sum(Path(n.decode()).stat().st_size for n in names if n and Path(n.decode()).is_file())


def item_order(prompts_dir: Path, recipe: PipelineProfile) -> str:
    """The prompts artifact's item order; refused where the profile's recipe is defined on token-first
    prompts (``cpu``) and these are not."""
    order = str(read_json(prompts_dir / "prompts.json").get("item_order", "title-first"))
    if recipe.prompts.item_order == "token-first" and order != "token-first":
        raise SystemExit(
            f"{prompts_dir / 'prompts.json'}: item_order is {order!r}; the {recipe.name} profile trains "
            f"on token-first prompts (llara stage prompts --profile {recipe.name})"
        )
    return order


def plan_rows(
    datasets: dict[str, tuple[str, str, str]],
    schedules: list[str],
    settings: dict,
    profile_name: str,
    orders: dict[str, str],
) -> list[dict]:
    """Fine-tuning rows in priority order (every schedule of the first dataset, then the next)."""
    plan = []
    user_token = str(settings.get("user_token", "none"))
    variants = {name: method_variants(order, user_token) for name, order in orders.items()}
    for name, (domain, _, _) in datasets.items():
        for schedule in schedules:
            row_name = f"{name}-{profile_name}-{schedule}-sasrec-s0"
            prompts, emb = f"{DATA}/{name}/prompts", f"{DATA}/{name}/embeddings"
            row = finetune_row(
                row_name, prompts, emb, "sasrec", schedule, 0, domain, settings, profile_name, variants[name]
            )
            plan.append(row)
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(".dev"))
    parser.add_argument("--wheels", type=Path, required=True, help="folder of cp312 wheels (wheels.sh)")
    parser.add_argument(
        "--data",
        action="append",
        required=True,
        help="NAME:DOMAIN:PROMPTS_DIR:EMBEDDINGS_DIR (a prompts artifact built for smollm2-135m and the "
        "SASRec item embeddings it goes with)",
    )
    parser.add_argument(
        "--profile",
        default="cpu",
        choices=("cpu", "long", "paper"),
        help="the fine-tuning profile of every row (default: cpu, the recipe chosen on validation)",
    )
    parser.add_argument(
        "--schedule",
        action="append",
        help="rows to fine-tune, in order (default: the profile's own schedule, then text for TALLRec)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="override a FinetuneConfig field of every row (on --profile), e.g. max_steps=1200",
    )
    args = parser.parse_args()
    a, b = args.out / "a", args.out / "b"
    for d in (a, b):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(args.wheels, a / "wheels")
    for spec in RANDOM_SHAPES:
        built = resolve_backbone_dir(spec)
        shutil.copytree(built, a / "backbones" / built.name)

    datasets: dict[str, tuple[str, str, str]] = {}
    orders: dict[str, str] = {}
    for spec in args.data:
        name, domain, prompts, embeddings = spec.split(":", 3)
        datasets[name] = (domain, prompts, embeddings)
        recipe = pipeline_profile(args.profile, domain)
        orders[name] = item_order(Path(prompts), recipe)
        for role, src in (("prompts", prompts), ("embeddings", embeddings)):
            dst = b / "data" / name / role
            dst.mkdir(parents=True)
            for path in Path(src).iterdir():
                if path.is_file():
                    shutil.copy(path, dst / path.name)
    settings = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    schedules = args.schedule or [recipe.finetune.schedule, "text"]  # the profile's, whatever the domain
    plan = plan_rows(datasets, schedules, settings, args.profile, orders)
    (b / "plan.json").write_text(json.dumps(plan, indent=2))

    gguf = smollm2_gguf().read_bytes()
    (b / "gguf.sha256").write_text(hashlib.sha256(gguf).hexdigest() + "\n")
    fixed = repo_bytes() + MARGIN
    part1 = LOAD_LIMIT - fixed - tree_bytes(a)
    part2 = len(gguf) - part1
    if part1 <= 0 or fixed + tree_bytes(b) + part2 > LOAD_LIMIT:
        raise SystemExit(
            f"the loads do not fit two calls of {LOAD_LIMIT >> 20} MiB each: repo {fixed >> 20} MiB, "
            f"a {tree_bytes(a) >> 20} MiB, b {tree_bytes(b) >> 20} MiB, GGUF {len(gguf) >> 20} MiB"
        )
    (a / "gguf.part1").write_bytes(gguf[:part1])
    (b / "gguf.part2").write_bytes(gguf[part1:])
    for d in (a, b):
        print(f"{d}: {tree_bytes(d) / 2**20:.1f} MiB (+ {fixed / 2**20:.1f} MiB repo and margin)")
    print(f"{len(plan)} rows planned: " + ", ".join(r["name"] for r in plan))


if __name__ == "__main__":
    main()
