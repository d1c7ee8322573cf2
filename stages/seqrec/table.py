"""Train models x losses x seeds on prepared datasets and write the stage-1 results table.

Each run is a plain ``pretrain`` stage call into ``work_dir/<dataset>/<model>-<loss>-s<seed>``; a run
whose ``metrics.json`` exists is reused, so an interrupted table resumes. The table (Parquet +
Markdown) reports, per (dataset, model, loss): mean test HR@1 over seeds, its seed spread, a 95 %
bootstrap CI over test users of the seed-averaged per-user hit, HR@5, NDCG@5, and the paper's
Table 2 HitRatio@1 for the same recommender.

    python -m stages.seqrec.table --data movielens=PREPARED_DIR --data lastfm=PREPARED_DIR \
        --losses ce --losses-for movielens=ce,bce1 --seeds 0 1 2 --out docs/seqrec_results
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stages.metrics import bootstrap, hit_at_k, ndcg_at_k
from stages.seqrec import pretrain, text_embeddings
from stages.seqrec.config import PretrainConfig

# LLaRA paper (arXiv 2312.02445) Table 2, HitRatio@1 of the stage-1 recommenders (source paper_table2
# of the project's reference/published_results.csv).
PAPER_TABLE2 = {
    ("gru4rec", "movielens"): 0.3750, ("gru4rec", "steam"): 0.4168, ("gru4rec", "lastfm"): 0.2616,
    ("caser", "movielens"): 0.3861, ("caser", "steam"): 0.4368, ("caser", "lastfm"): 0.2233,
    ("sasrec", "movielens"): 0.3444, ("sasrec", "steam"): 0.4010, ("sasrec", "lastfm"): 0.2233,
    ("morec", "movielens"): 0.2822, ("morec", "steam"): 0.3911, ("morec", "lastfm"): 0.1652,
}
DISPLAY = {"gru4rec": "GRU4Rec", "caser": "Caser", "sasrec": "SASRec", "morec": "MoRec",
           "sasrec-conv": "SASRec (conv)"}
PAPER_MODEL = {"sasrec-conv": "sasrec"}  # compared with the paper's row of the same model


def paper_dataset(name: str) -> str | None:
    """Map a dataset label to the paper's dataset key (movielens, steam, lastfm)."""
    name = name.lower()
    for key, hints in (("movielens", ("movielens", "ml-100k", "ml100k")), ("lastfm", ("lastfm",)),
                       ("steam", ("steam",))):
        if any(h in name for h in hints):
            return key
    return None


def parse_setting(text: str) -> tuple[str, bool | int | float | str]:
    """``"dropout=0.3"`` -> ``("dropout", 0.3)``, typed like the ``PretrainConfig`` field."""
    name, sep, raw = text.partition("=")
    defaults = {f.name: f.default for f in fields(PretrainConfig)}
    if not sep or name not in defaults or name in ("model", "seed"):
        raise ValueError(f"{text!r}: expected FIELD=VALUE with FIELD a PretrainConfig hyperparameter")
    kind = type(defaults[name])
    try:
        value = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
    except ValueError as e:
        raise ValueError(f"{text!r}: {name} must be a {kind.__name__}") from e
    return name, value


def parse_model_setting(text: str) -> tuple[str | None, str, bool | int | float | str]:
    """``"sasrec.dropout=0.3"`` -> ``("sasrec", "dropout", 0.3)``; without ``MODEL.`` the model is None."""
    target, sep, raw = text.partition("=")
    model, _, name = target.rpartition(".")
    name, value = parse_setting(f"{name}{sep}{raw}")
    return model or None, name, value


def parse_model_settings(specs: list[str]) -> dict[str, dict]:
    """``["sasrec.dropout=0.3", "gru4rec.lr=3e-3"]`` -> ``{"sasrec": {"dropout": 0.3}, ...}``."""
    out: dict[str, dict] = {}
    for spec in specs:
        model, name, value = parse_model_setting(spec)
        if model is None:
            raise ValueError(f"--set {spec!r}: expected MODEL.FIELD=VALUE")
        out.setdefault(model, {})[name] = value
    return out


def run_one(data: Path, text: Path | None, cfg: PretrainConfig, out: Path) -> dict:
    """Train one run into ``out`` unless it already finished there; returns its ``metrics.json``."""
    if not (out / "metrics.json").exists():
        tmp = out.with_name(out.name + ".tmp")
        if tmp.exists():
            for f in tmp.iterdir():
                f.unlink()
        tmp.mkdir(parents=True, exist_ok=True)
        inputs = {"data": data, **({"text": text} if text is not None else {})}
        pretrain.run(cfg, inputs, tmp)
        tmp.rename(out)  # only complete runs get the final name, so a resume never reuses half a run
    saved = json.loads((out / "config.json").read_text())["config"]
    wanted = cfg.as_dict()
    if any(saved.get(k) != v for k, v in wanted.items() if k not in PretrainConfig.NOT_IN_ID):
        raise ValueError(f"{out} was trained with another config; use a fresh work directory")
    return json.loads((out / "metrics.json").read_text())


def _text_dir(data: Path, work: Path, threads: int) -> Path:
    out = work / "text"
    if not (out / text_embeddings.FILE).exists():
        out.mkdir(parents=True, exist_ok=True)
        text_embeddings.run(text_embeddings.TextEmbeddingsConfig(threads=threads), {"data": data}, out)
    return out


def run_table(datasets: dict[str, Path], work_dir: Path, out: Path | None = None,
              models: tuple[str, ...] = ("gru4rec", "caser", "sasrec", "morec"),
              losses: tuple[str, ...] | dict[str, tuple[str, ...]] = ("ce",),
              seeds: tuple[int, ...] = (0, 1, 2), base: PretrainConfig | None = None,
              train_missing: bool = True, per_model: dict[str, dict] | None = None) -> pa.Table:
    """Train every (dataset, model, loss, seed); write ``out.parquet`` and ``out.md`` when ``out``.

    ``losses`` is one tuple for every dataset, or a dict dataset label -> tuple. ``per_model`` overrides
    ``base`` fields for one model (e.g. a setting chosen by ``stages.seqrec.sweep``). With
    ``train_missing=False`` nothing is trained: combinations without all their runs are left out."""
    base = base or PretrainConfig(progress=False)
    per_model = per_model or {}
    rows = []
    for label, data in datasets.items():
        work = Path(work_dir) / label
        for model in models:
            text = _text_dir(Path(data), work, base.threads) if model == "morec" and train_missing else None
            for loss in losses.get(label, ("ce",)) if isinstance(losses, dict) else losses:
                use = seeds
                if not train_missing:  # tabulate the seeds that finished; skip the combination if none did
                    use = tuple(s for s in seeds if (work / f"{model}-{loss}-s{s}" / "metrics.json").exists())
                    if not use:
                        continue
                own = per_model.get(model, {})
                runs = [run_one(Path(data), text, replace(base, model=model, loss=loss, seed=s, **own),
                                work / f"{model}-{loss}-s{s}") for s in use]
                ranks = np.stack([pq.read_table(work / f"{model}-{loss}-s{s}" / "scores_test.parquet")
                                  .column("rank").to_numpy() for s in use])  # (seeds, users)
                hr1_seeds = (ranks < 1).mean(axis=1)  # (seeds,)
                # CI over test users of the seed-averaged per-user hit: the users are the noise source
                ci = bootstrap(hit_at_k(ranks, 1).mean(axis=0))
                key = paper_dataset(label)
                paper = PAPER_TABLE2.get((PAPER_MODEL.get(model, model), key)) if key else None
                rows.append({
                    "dataset": label, "model": DISPLAY.get(model, model), "loss": loss,
                    "setting": ", ".join(f"{k} {v}" for k, v in sorted(own.items())), "seeds": len(use),
                    "n_test": int(ranks.shape[1]), "hr@1": float(hr1_seeds.mean()),
                    "hr@1_seed_std": float(hr1_seeds.std(ddof=1)) if len(use) > 1 else 0.0,
                    "hr@1_ci_low": ci.low, "hr@1_ci_high": ci.high,
                    "hr@5": float(hit_at_k(ranks, 5).mean()), "ndcg@5": float(ndcg_at_k(ranks, 5).mean()),
                    "val_hr@1": float(np.mean([r["val"]["hr@1"]["mean"] for r in runs])),
                    "paper_hr@1": paper,
                    "delta_vs_paper": None if paper is None else float(hr1_seeds.mean()) - paper,
                    "best_epoch": float(np.mean([r["best_epoch"] for r in runs])),
                    "train_seconds": float(np.mean([r["train_seconds"] for r in runs])),
                })
    table = pa.Table.from_pylist(rows)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out.with_suffix(".parquet"))
        out.with_suffix(".md").write_text(to_markdown(rows, base, seeds))
    return table


def to_markdown(rows: list[dict], base: PretrainConfig, seeds: tuple[int, ...]) -> str:
    """The results table plus, where both losses ran, the ce - bce1 HR@1 gap per model."""
    f = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
    lines = [
        "# Stage 1: sequential recommenders, test HitRatio@1 on the frozen 20 candidates",
        "",
        f"Seeds {list(seeds)} (column `seeds`: how many finished); Adam lr {base.lr}, "
        f"weight decay {base.weight_decay}, dropout {base.dropout}, batch {base.batch_size}, "
        f"<= {base.epochs} epochs, early stopping (patience {base.patience}, not before epoch "
        f"{base.min_epochs}) and checkpoint on validation "
        f"{base.select_metric}. HR@1 is the mean over seeds (± seed std); the CI is a 95 % bootstrap over "
        "test users of the seed-averaged per-user hit. Paper = LLaRA Table 2 HitRatio@1. Column "
        "`setting`: this model's own values where they differ from the ones above.",
        "",
        "| dataset | model | loss | setting | seeds | n test | HR@1 (± seed std) | 95 % CI | HR@5 | NDCG@5 "
        "| val HR@1 | paper HR@1 | Δ vs paper | s/run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delta = "-" if r["delta_vs_paper"] is None else f"{r['delta_vs_paper']:+.4f}"
        cells = [r["dataset"], r["model"], r["loss"], r["setting"] or "-", str(r["seeds"]), str(r["n_test"]),
                 f"{r['hr@1']:.4f} ± {r['hr@1_seed_std']:.4f}",
                 f"[{r['hr@1_ci_low']:.4f}, {r['hr@1_ci_high']:.4f}]",
                 f"{r['hr@5']:.4f}", f"{r['ndcg@5']:.4f}", f"{r['val_hr@1']:.4f}", f(r["paper_hr@1"]), delta,
                 f"{r['train_seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    by = {(r["dataset"], r["model"], r["loss"]): r for r in rows}
    gaps = [(d, m, by[(d, m, "ce")]["hr@1"] - by[(d, m, "bce1")]["hr@1"])
            for (d, m, loss) in by if loss == "ce" and (d, m, "bce1") in by]
    if gaps:
        lines += ["", "## ce (full softmax) vs bce1 (one sampled negative, LLaRA's loss), test HR@1", "",
                  "| dataset | model | ce − bce1 |", "|---|---|---|"]
        lines += [f"| {d} | {m} | {g:+.4f} |" for d, m, g in gaps]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", action="append", required=True, help="LABEL=PREPARED_DIR (repeatable)")
    p.add_argument("--models", nargs="+", default=["gru4rec", "caser", "sasrec", "morec"])
    p.add_argument("--losses", nargs="+", default=["ce"], help="losses for every dataset")
    p.add_argument("--losses-for", action="append", default=[], help="LABEL=ce,bce1: per-dataset override")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=PretrainConfig.epochs)
    p.add_argument("--patience", type=int, default=PretrainConfig.patience)
    p.add_argument("--threads", type=int, default=PretrainConfig.threads)
    p.add_argument("--weight-decay", type=float, default=PretrainConfig.weight_decay)
    p.add_argument("--dropout", type=float, default=PretrainConfig.dropout)
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="MODEL.FIELD=VALUE",
                   help="one model's own hyperparameter, e.g. sasrec.dropout=0.3 (repeatable)")
    p.add_argument("--work", type=Path, default=Path(".llara/seqrec-table"))
    p.add_argument("--out", type=Path, default=Path("docs/seqrec_results"))
    p.add_argument("--no-train", action="store_true", help="only tabulate the runs already in --work")
    a = p.parse_args(argv)
    datasets = dict(d.split("=", 1) for d in a.data)
    base = PretrainConfig(progress=False, epochs=a.epochs, patience=a.patience, threads=a.threads,
                          weight_decay=a.weight_decay, dropout=a.dropout)
    overrides = dict(x.split("=", 1) for x in a.losses_for)
    losses = {k: tuple(overrides[k].split(",")) if k in overrides else tuple(a.losses) for k in datasets}
    run_table({k: Path(v) for k, v in datasets.items()}, a.work, a.out, tuple(a.models), losses,
              tuple(a.seeds), base, train_missing=not a.no_train, per_model=parse_model_settings(a.sets))
    print(a.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
