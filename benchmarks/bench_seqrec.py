"""Stage-1 throughput: training samples/s (one epoch) and evaluation rows/s per recommender.

Uses bundled MovieLens-100K through the prepare stage when it is importable, else a synthetic
dataset of the same size (943 users, 1,682 items, ~100k interactions). MoRec uses random unit
vectors in place of MiniLM titles: its cost does not depend on the vectors' values.

    .venv/bin/python benchmarks/bench_seqrec.py [--threads N] [--loss ce|bce1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from any directory

from stages.seqrec.config import PretrainConfig  # noqa: E402
from stages.seqrec.data import EXAMPLE_COLUMNS, Split, load_prepared, write_prepared  # noqa: E402
from stages.seqrec.evaluate import score_candidates  # noqa: E402
from stages.seqrec.models import MODELS, build_model  # noqa: E402
from stages.seqrec.train import train  # noqa: E402


def synthetic_prepared(root: Path, n_users: int = 943, n_items: int = 1682, n_inter: int = 100_000) -> Path:
    """ML-100K-sized prepared dataset in the ``prepare`` contract (random Zipf-ish sequences)."""
    rng = np.random.default_rng(0)
    lengths = rng.multinomial(n_inter - 20 * n_users, np.ones(n_users) / n_users) + 20
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rows: dict[str, list] = {k: [] for k in EXAMPLE_COLUMNS}
    for u, n in enumerate(lengths):
        seq = rng.choice(n_items, size=n, p=pop / pop.sum()).tolist()
        split = "train" if u < 0.8 * n_users else ("val" if u < 0.9 * n_users else "test")
        for t in range(3, n) if split == "train" else [n - 1]:
            cands = None
            if split != "train":
                pool = np.setdiff1d(np.arange(n_items), seq[max(0, t - 10) : t + 1])
                cands = [seq[t], *rng.choice(pool, 19, replace=False).tolist()]
            for k, v in zip(rows, (split, u, seq[max(0, t - 10) : t], seq[t], cands), strict=True):
                rows[k].append(v)
    titles = [f"item {i}" for i in range(n_items)]
    return write_prepared(root, titles, rows, name="synthetic-ml100k")


def prepared_ml100k(root: Path) -> tuple[Path, str]:
    try:
        from stages.preprocess import PrepareConfig
        from stages.preprocess import run as prepare
    except ImportError:
        what = "synthetic ML-100K-sized (prepare stage not importable)"
        return synthetic_prepared(root / "synthetic"), what
    out = root / "ml100k"
    out.mkdir()
    prepare(PrepareConfig(source="bundled:movielens-100k"), {}, out)
    return out, "bundled MovieLens-100K"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--loss", default="ce")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, what = prepared_ml100k(Path(tmp))
        data = load_prepared(data_dir)
    tr = data.splits["train"]
    # an evaluation workload big enough to time: the first 4096 train rows with random candidates
    n = min(4096, len(tr))
    gen = torch.Generator().manual_seed(0)
    cands = torch.randint(0, data.n_items, (n, 20), generator=gen)
    cands[:, 0] = tr.target[:n]
    ev = Split(tr.user_id[:n], tr.history[:n], tr.lengths[:n], tr.target[:n], cands)
    print(f"data: {what}; {len(tr)} train rows, {data.n_items} items; threads {a.threads}; loss {a.loss}")
    print(f"{'model':<8} {'train samples/s':>16} {'eval rows/s':>12} {'epoch s':>8}")
    for name in a.models:
        torch.manual_seed(0)
        text = torch.randn(data.n_items, 384) if name == "morec" else None
        model = build_model(name, data.n_items, text=text)
        cfg = PretrainConfig(model=name, loss=a.loss, epochs=1, progress=False, threads=a.threads)
        t0 = time.perf_counter()
        train(model, tr, data.splits["val"], cfg)
        epoch_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        score_candidates(model, ev)
        eval_s = time.perf_counter() - t0
        print(f"{name:<8} {len(tr) / epoch_s:>16.0f} {n / eval_s:>12.0f} {epoch_s:>8.2f}")


if __name__ == "__main__":
    main()
