"""Choose stage-1 hyperparameters on validation: a grid x models x seeds, ranked by validation only.

Each grid point is trained for every seed with the plain ``pretrain`` stage into
``work_dir/<model>-<key>-s<seed>`` (``key`` hashes the config without the seed), so a sweep resumes
and a later, wider grid reuses what already ran. The table ranks grid points per model by the
seed-mean validation ``select_metric``; test metrics are never read here, so the choice cannot leak
the test set. The winner of each model is printed as ``--set`` flags for ``stages.seqrec.table``.

    python -m stages.seqrec.sweep --data PREPARED_DIR --models gru4rec sasrec \
        --grid lr=1e-3,3e-3 --grid dropout=0.1,0.3 --seeds 0 1 --jobs 2 --out docs/seqrec_sweep_lastfm

``--point "dropout=0.3 lr=3e-3"`` adds single settings when a full product would cost too much.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from stages.seqrec.config import PretrainConfig
from stages.seqrec.table import parse_setting, run_one

# Fields that identify a run or only change how it looks: never grid axes.
NOT_SWEPT = ("model", "seed", *PretrainConfig.NOT_IN_ID)


def _setting(text: str) -> tuple[str, bool | int | float | str]:
    name, value = parse_setting(text)
    if name in NOT_SWEPT:
        raise ValueError(f"{text!r}: {name} is not a hyperparameter to sweep (use --models / --seeds)")
    return name, value


def parse_grid(specs: list[str]) -> list[dict]:
    """``["lr=1e-3,3e-3", "dropout=0.1,0.3"]`` -> the 4 settings of the product, in a stable order."""
    axes: dict[str, list] = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        axes[name] = [_setting(f"{name}={v}")[1] for v in values.split(",") if v]
        if not axes[name]:
            raise ValueError(f"--grid {spec!r}: no values")
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


def parse_point(spec: str) -> dict:
    """``"dropout=0.3 lr=3e-3"`` -> one setting; ``"base"`` (or an empty string) is the base config."""
    if spec.strip() in ("", "base"):
        return {}
    return dict(_setting(part) for part in spec.split())


def config_key(cfg: PretrainConfig) -> str:
    """8 hex digits naming a config without its seed, so the seeds of one grid point share it."""
    d = {k: v for k, v in cfg.as_dict().items() if k != "seed" and k not in PretrainConfig.NOT_IN_ID}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]


def _train(job: tuple[Path, PretrainConfig, Path]) -> dict:
    data, cfg, out = job
    metrics = run_one(data, None, cfg, out)
    val = metrics["val"]  # the test entry is deliberately never touched
    return {"ndcg@5": val["ndcg@5"]["mean"], "hr@1": val["hr@1"]["mean"],
            "select": val[cfg.select_metric]["mean"], "best_epoch": metrics["best_epoch"]}


def run_sweep(data: Path, work_dir: Path, models: tuple[str, ...], grid: list[dict],
              seeds: tuple[int, ...] = (0, 1), base: PretrainConfig | None = None, jobs: int = 1,
              out: Path | None = None) -> list[dict]:
    """Train every (model, setting, seed) and return one row per (model, setting), best first."""
    base = base or PretrainConfig(progress=False)
    if "morec" in models:
        raise ValueError("sweep morec through stages.seqrec.table; it needs the text-embedding input")
    points = [(m, s, replace(base, model=m, **s)) for m in models for s in grid]
    jobs_list = [(Path(data), replace(cfg, seed=seed), Path(work_dir) / f"{m}-{config_key(cfg)}-s{seed}")
                 for m, _, cfg in points for seed in seeds]
    results: list[dict] = [{}] * len(jobs_list)
    with tqdm(total=len(jobs_list), desc="sweep runs", unit="run") as bar:
        if jobs > 1:
            with ProcessPoolExecutor(jobs) as pool:
                futures = {pool.submit(_train, j): i for i, j in enumerate(jobs_list)}
                for done in as_completed(futures):
                    results[futures[done]] = done.result()
                    bar.update()
        else:
            for i, j in enumerate(jobs_list):
                results[i] = _train(j)
                bar.update()
    rows = []
    for i, (model, setting, cfg) in enumerate(points):
        res = results[i * len(seeds) : (i + 1) * len(seeds)]
        sel = np.array([r["select"] for r in res])
        rows.append({
            "model": model, "setting": json.dumps(setting, sort_keys=True), "key": config_key(cfg),
            "seeds": len(seeds), f"val_{base.select_metric}": float(sel.mean()),
            "val_seed_std": float(sel.std(ddof=1)) if len(seeds) > 1 else 0.0,
            "val_hr@1": float(np.mean([r["hr@1"] for r in res])),
            "best_epoch": float(np.mean([r["best_epoch"] for r in res])),
        })
    metric = f"val_{base.select_metric}"
    rows.sort(key=lambda r: (r["model"], -r[metric]))
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        for r in mine:
            r["chosen"] = r is mine[0]
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), out.with_suffix(".parquet"))
        out.with_suffix(".md").write_text(to_markdown(rows, base, seeds, dataset_name(Path(data))))
    return rows


def set_flags(rows: list[dict]) -> list[str]:
    """The chosen setting of each model as ``stages.seqrec.table`` ``--set model.field=value`` flags."""
    chosen = [r for r in rows if r["chosen"]]
    return [f"--set {r['model']}.{k}={v}" for r in chosen for k, v in json.loads(r["setting"]).items()]


def dataset_name(data: Path) -> str:
    """The prepared dataset's own name (its directory is often a content-addressed artifact id)."""
    meta = data / "dataset.json"
    return str(json.loads(meta.read_text()).get("name", data.name)) if meta.exists() else data.name


def to_markdown(rows: list[dict], base: PretrainConfig, seeds: tuple[int, ...], data: str) -> str:
    metric = f"val_{base.select_metric}"
    lines = [
        f"# Stage-1 validation sweep on `{data}`", "",
        f"Seeds {list(seeds)}; base: Adam lr {base.lr}, weight decay {base.weight_decay}, dropout "
        f"{base.dropout}, batch {base.batch_size}, <= {base.epochs} epochs (patience {base.patience}, not "
        f"before epoch {base.min_epochs}). Ranked per model by the seed-mean validation "
        f"{base.select_metric}; no test metric is read. ✓ = chosen.", "",
        f"| model | setting | {metric} (± seed std) | val HR@1 | best epoch | chosen |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | `{r['setting']}` | {r[metric]:.4f} ± {r['val_seed_std']:.4f} | "
                     f"{r['val_hr@1']:.4f} | {r['best_epoch']:.1f} | {'✓' if r['chosen'] else ''} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="a prepared dataset directory")
    p.add_argument("--models", nargs="+", default=["gru4rec", "caser", "sasrec"])
    p.add_argument("--grid", action="append", default=[], help="FIELD=V1,V2,... (repeatable; product)")
    p.add_argument("--point", action="append", default=[],
                   help='one setting, "FIELD=V FIELD=V" or "base" (repeatable; added to the grid)')
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--epochs", type=int, default=PretrainConfig.epochs)
    p.add_argument("--patience", type=int, default=PretrainConfig.patience)
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (each uses one thread)")
    p.add_argument("--work", type=Path, default=Path(".llara/seqrec-sweep"))
    p.add_argument("--out", type=Path, default=None, help="write OUT.parquet and OUT.md")
    a = p.parse_args(argv)
    base = PretrainConfig(progress=False, epochs=a.epochs, patience=a.patience)
    grid = (parse_grid(a.grid) if a.grid else []) + [parse_point(x) for x in a.point]
    rows = run_sweep(a.data, a.work, tuple(a.models), grid or [{}], tuple(a.seeds), base, a.jobs, a.out)
    print(to_markdown(rows, base, tuple(a.seeds), dataset_name(a.data)))
    print(" ".join(set_flags(rows)))


if __name__ == "__main__":
    main()
