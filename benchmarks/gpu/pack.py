"""Pack what the lent GPU machine lacks, in two loads that each fit its 64 MiB transfer limit.

The machine has torch, transformers, peft, accelerate and pyarrow, but no deepspeed, hjson, pydantic,
gguf, polars or prefect, and no network. The SmolLM2 GGUF (98 MB) is larger than one transfer, so it
travels in two parts: ``.dev/a`` (wheels, SmolLM2's config, prompts and embedding artifacts, GGUF part
1) goes with the first call (``check.sh``, which copies it to /tmp there), ``.dev/b`` (GGUF part 2, the
row plan) with the second (``rows.sh``). ``.dev/`` and ``.whl/`` are git-ignored.

    python benchmarks/gpu/pack.py --wheels .whl --backbone-dir DIR \\
        --data movielens:movie:PROMPTS_DIR --embeddings movielens:sasrec:0:EMB_DIR ... \\
        --set max_steps=100 --set micro_batch=32 --set grad_accum=4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from flows.offline_rows import finetune_row
from stages.llm.backbone import smollm2_gguf

PART1_BYTES = 36 * 2**20
DATA = "/tmp/llara-data"  # where check.sh puts .dev/a/data on the GPU machine


def _copy_artifact(src: Path, dst: Path, names: tuple[str, ...] | None = None) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        if path.is_file() and (names is None or path.name in names):
            shutil.copy(path, dst / path.name)


def plan_rows(datasets: dict[str, str], embeddings: dict, settings: dict, seeds: list[int]) -> list[dict]:
    """Rows in priority order: what the table needs most runs first, in case the budget runs out."""

    def llara(name: str, sr: str, schedule: str, seed: int) -> dict:
        prompts, emb = f"{DATA}/{name}/prompts", embeddings.get((name, sr, seed))
        row_name = f"{name}-{schedule}-{sr}-s{seed}"
        return finetune_row(row_name, prompts, emb, sr, schedule, seed, datasets[name], settings)

    def zero_shot(name: str) -> dict:
        return {
            "name": f"{name}-zero-shot",
            "row": "zero-shot",
            "prompts": f"{DATA}/{name}/prompts",
            "embeddings": embeddings.get((name, "sasrec", 0)),
            "modes": ["scoring", "generation"],
            "min_s": 30,
        }

    names = list(datasets)
    plan = [llara(n, "sasrec", "curriculum", 0) for n in names]
    plan += [zero_shot(n) for n in names]
    plan += [llara(n, "sasrec", "text", 0) for n in names]
    plan += [llara(n, sr, "curriculum", 0) for n in names for sr in ("gru4rec", "caser")]
    plan += [llara(n, "sasrec", "direct", 0) for n in names]
    plan += [llara(n, "sasrec", "curriculum", s) for n in names for s in seeds if s != 0]
    return [row for row in plan if row["embeddings"] is not None]  # rows whose embeddings were packed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(".dev"))
    parser.add_argument("--wheels", type=Path, required=True, help="folder of cp312 wheels to carry")
    parser.add_argument(
        "--backbone-dir", type=Path, required=True, help="converted SmolLM2 dir (its config.json travels)"
    )
    parser.add_argument("--data", action="append", default=[], help="NAME:DOMAIN:PROMPTS_DIR")
    parser.add_argument("--embeddings", action="append", default=[], help="NAME:SR:SEED:EMB_DIR")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="override a FinetuneConfig field of every fine-tuning row (e.g. max_steps=100)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    a, b = args.out / "a", args.out / "b"
    for d in (a, b):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(args.wheels, a / "wheels")
    shutil.copy(args.backbone_dir / "config.json", a / "smollm2-config.json")
    gguf = smollm2_gguf().read_bytes()
    (a / "gguf.part1").write_bytes(gguf[:PART1_BYTES])
    b.mkdir(parents=True)
    (b / "gguf.part2").write_bytes(gguf[PART1_BYTES:])
    (b / "gguf.sha256").write_text(hashlib.sha256(gguf).hexdigest() + "\n")

    datasets: dict[str, str] = {}
    for spec in args.data:
        name, domain, prompts = spec.split(":", 2)
        datasets[name] = domain
        _copy_artifact(Path(prompts), a / "data" / name / "prompts")
    embeddings: dict = {}
    for spec in args.embeddings:
        name, sr, seed, emb = spec.split(":", 3)
        _copy_artifact(Path(emb), a / "data" / name / f"{sr}-s{seed}")
        embeddings[(name, sr, int(seed))] = f"{DATA}/{name}/{sr}-s{seed}"
    settings = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    plan = plan_rows(datasets, embeddings, settings, args.seeds)
    (b / "plan.json").write_text(json.dumps(plan, indent=2))
    for d in (a, b):
        size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        print(f"{d}: {size / 2**20:.1f} MiB")
    print(f"{len(plan)} rows planned: " + ", ".join(r["name"] for r in plan))


if __name__ == "__main__":
    main()
