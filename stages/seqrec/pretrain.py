"""Stage ``pretrain``: train one sequential recommender and evaluate it on the frozen candidates.

inputs: ``{"data": prepared dataset}`` (+ ``{"text": text-embeddings artifact}`` for morec).
Writes ``model.safetensors``, ``config.json``, ``metrics.json``, ``scores_val.parquet``,
``scores_test.parquet``, ``train_log.parquet`` and ``tensorboard/`` (the training curves). Test is
scored once, after the checkpoint has been chosen on validation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from stages.errors import DataError
from stages.seqrec.config import PretrainConfig
from stages.seqrec.data import MAX_LEN, Prepared, load_prepared
from stages.seqrec.evaluate import evaluate, write_scores
from stages.seqrec.models import MODELS, build_model
from stages.seqrec.text_embeddings import load_text_embeddings
from stages.seqrec.train import train

NAME = "pretrain"
__all__ = ["NAME", "PretrainConfig", "run", "load_model"]


def score_and_save(model: torch.nn.Module, data: Prepared, seed: int, out_dir: Path) -> dict[str, dict]:
    """Score val and test on the frozen candidates (``scores_<split>.parquet``), save the weights
    (``model.safetensors``) and return the metric reports by split, as a pretrain artifact holds them."""
    reports = {}
    for split in ("val", "test"):
        report, scores, rank = evaluate(model, data.splits[split], seed=seed)
        write_scores(out_dir / f"scores_{split}.parquet", data.splits[split], scores, rank)
        reports[split] = {k: v.as_dict() for k, v in report.items()}
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / "model.safetensors"))
    return reports


def run(config: PretrainConfig, inputs: dict[str, Path], out_dir: Path) -> dict:
    if config.model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {config.model!r}")
    data = load_prepared(Path(inputs["data"]))
    text = None
    if config.model == "morec":
        if "text" not in inputs:
            raise DataError("inputs", "text", "morec needs the text-embeddings artifact as input 'text'")
        text = load_text_embeddings(Path(inputs["text"]))
        if text.shape[0] != data.n_items:
            problem = f"{text.shape[0]} rows for {data.n_items} items"
            raise DataError(inputs["text"], "text_embeddings", problem)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)  # initialisation and dropout; batch order has its own generator
    model = build_model(config.model, data.n_items, MAX_LEN, config.dim, config.dropout, text)
    out_dir = Path(out_dir)
    result = train(model, data.splits["train"], data.splits["val"], config, out_dir)
    reports = score_and_save(model, data, config.seed, out_dir)
    meta = {"config": config.as_dict(), "n_items": data.n_items, "max_len": MAX_LEN, "dataset": data.name}
    (out_dir / "config.json").write_text(json.dumps(meta, indent=2))
    last = result.log[result.best_epoch] if result.best_epoch >= 0 else {}
    metrics = {"model": config.model, "loss": config.loss, "dataset": data.name, "seed": config.seed,
               "best_epoch": result.best_epoch, "epochs_run": len(result.log),
               "train_loss_at_best": last.get("loss"), "select_metric": config.select_metric,
               "train_seconds": result.seconds, "train_rows": len(data.splits["train"]),
               "val": reports["val"], "test": reports["test"]}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    pq.write_table(pa.Table.from_pylist(result.log), out_dir / "train_log.parquet")
    return {"model": config.model, "loss": config.loss, "dataset": data.name, "best_epoch": result.best_epoch,
            "val_hr@1": reports["val"]["hr@1"]["mean"], "test_hr@1": reports["test"]["hr@1"]["mean"],
            "train_seconds": round(result.seconds, 2)}


def load_model(model_dir: Path) -> tuple[nn.Module, dict]:
    """Rebuild a trained model (eval mode) from a ``pretrain`` artifact; returns (model, config.json)."""
    model_dir = Path(model_dir)
    for f in ("config.json", "model.safetensors"):
        if not (model_dir / f).exists():
            raise DataError(model_dir / f, None, "missing: not a pretrain artifact")
    meta = json.loads((model_dir / "config.json").read_text())
    cfg = meta["config"]
    state = load_file(str(model_dir / "model.safetensors"))
    text = state["items.text"][:-1] if cfg["model"] == "morec" else None  # drop the zero padding row
    model = build_model(cfg["model"], meta["n_items"], meta["max_len"], cfg["dim"], cfg["dropout"], text)
    model.load_state_dict(state)
    return model.eval(), meta
