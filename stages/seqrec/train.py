"""Train one sequential recommender: full-softmax CE (default) or LLaRA's BCE with one negative.

The checkpoint is chosen on the frozen validation candidates only; the test split is never read
here. Runs are deterministic on CPU for a fixed seed: the global torch RNG (init, dropout) is
seeded once, and batch order and negatives come from a private generator.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from stages.seqrec.config import PretrainConfig
from stages.seqrec.data import Split
from stages.seqrec.evaluate import evaluate
from stages.seqrec.monitor import EpochMonitor


@dataclass
class TrainResult:
    """The selected checkpoint and the per-epoch log."""

    state: dict[str, torch.Tensor]
    best_epoch: int
    best_val: float
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def loss_fn(logits: torch.Tensor, target: torch.Tensor, loss: str, gen: torch.Generator) -> torch.Tensor:
    """logits (B, n_items), target (B,) -> scalar loss."""
    if loss == "ce":
        return F.cross_entropy(logits, target)
    n_items = logits.shape[1]
    # uniform over the other n_items - 1 items: shift the target by 1..n_items-1 modulo n_items
    neg = (target + torch.randint(1, n_items, target.shape, generator=gen)) % n_items  # (B,)
    pos_logit = logits.gather(1, target[:, None]).squeeze(1)  # (B,)
    neg_logit = logits.gather(1, neg[:, None]).squeeze(1)  # (B,)
    return (F.binary_cross_entropy_with_logits(pos_logit, torch.ones_like(pos_logit))
            + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit)))


def train(
    model: nn.Module,
    train_split: Split,
    val_split: Split,
    config: PretrainConfig,
    out_dir: Path | None = None,
) -> TrainResult:
    """Adam over shuffled batches; keeps the state with the best validation ``select_metric``.

    Each epoch shows as a bar step on a terminal, else a log line, and reaches the reporter
    (``stages.progress``); with ``out_dir``, its loss and validation metrics go to TensorBoard there.
    """
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start = time.perf_counter()
    best = TrainResult(copy.deepcopy(model.state_dict()), -1, float("-inf"))
    stale = 0
    with EpochMonitor(config, out_dir) as monitor:
        for epoch in range(config.epochs):
            model.train()
            order = torch.randperm(len(train_split), generator=gen)
            total, batches = 0.0, 0
            for s in range(0, len(order), config.batch_size):
                idx = order[s : s + config.batch_size]
                logits = model(train_split.history[idx], train_split.lengths[idx])  # (b, n_items)
                loss = loss_fn(logits, train_split.target[idx], config.loss, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, batches = total + loss.item(), batches + 1
            report, _, _ = evaluate(model, val_split, seed=config.seed)
            val = report[config.select_metric].mean
            best.log.append({"epoch": epoch, "loss": total / max(batches, 1), "val_hr@1": report["hr@1"].mean,
                             "val_ndcg@5": report["ndcg@5"].mean, "seconds": time.perf_counter() - start})
            improved = val > best.best_val
            if improved:
                best.state, best.best_epoch, best.best_val = copy.deepcopy(model.state_dict()), epoch, val
                stale = 0
            else:
                stale += 1
            stop = not improved and stale >= config.patience and epoch + 1 >= config.min_epochs
            monitor.epoch(best.log[-1], val, improved, stop)
            if stop:
                break
    best.seconds = time.perf_counter() - start
    model.load_state_dict(best.state)
    return best
