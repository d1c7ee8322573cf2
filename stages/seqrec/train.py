"""Train one sequential recommender: full-softmax CE (default) or LLaRA's BCE with one negative.

The checkpoint is chosen on the frozen validation candidates only; the test split is never read
here. Runs are deterministic on CPU for a fixed seed: the global torch RNG (init, dropout) is
seeded once, and batch order and negatives come from a private generator.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from stages.seqrec.data import Split
from stages.seqrec.evaluate import evaluate

LOSSES = ("ce", "bce1")
SELECT_METRICS = ("hr@1", "ndcg@5")


@dataclass(frozen=True)
class PretrainConfig:
    """Configuration of stage 1 (``pretrain``): one sequential recommender trained on item ids."""

    # How the run looks, not what it computes: kept out of the artifact id.
    NOT_IN_ID = ("threads", "progress")

    model: str = "sasrec"
    """One of sasrec, gru4rec, caser, morec (morec also needs the ``text`` input artifact)."""
    loss: str = "ce"
    """``ce``: softmax cross-entropy over the whole catalogue (stronger, Klenitskiy & Vasilev 2023);
    ``bce1``: binary cross-entropy on the target and ONE uniformly sampled negative (LLaRA parity)."""
    dim: int = 64
    """Item-embedding and hidden size (LLaRA: 64; stage 2's projector input)."""
    dropout: float = 0.1
    """Dropout rate inside the models."""
    lr: float = 1e-3
    """Adam learning rate (LLaRA: 1e-3)."""
    weight_decay: float = 1e-6
    """Adam's L2 weight decay (LLaRA searched 1e-3..1e-7)."""
    batch_size: int = 256
    """Training rows per optimizer step (LLaRA: 256)."""
    epochs: int = 20
    """Maximum number of passes over the training rows (ML-100K with ce peaks at ~5-8 epochs)."""
    patience: int = 3
    """Stop after this many epochs without a better validation ``select_metric``."""
    min_epochs: int = 8
    """Never stop before this many epochs. An untrained model can score a lucky validation NDCG@5 that
    the next 3-4 epochs do not beat (LastFM SASRec, seeds 0 and 1: best epoch 0, test HR@1 .04/.10)."""
    select_metric: str = "ndcg@5"
    """Validation metric for early stopping and checkpoint choice. NDCG@5 by default: on ~100
    validation users HR@1 moves in steps of 1 %, so it picks lucky epochs more than NDCG@5 does."""
    seed: int = 0
    """Seeds initialisation, dropout, batch order and sampled negatives."""
    threads: int = 1
    """torch CPU threads; 0 leaves torch's default. One by default: these models' matrices (256 x 64)
    are too small to gain from intra-op threads, and on a shared machine extra threads cost 3-5x."""
    progress: bool = True
    """Show a tqdm bar over epochs."""

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.select_metric not in SELECT_METRICS:
            raise ValueError(f"select_metric must be one of {SELECT_METRICS}, got {self.select_metric!r}")

    def as_dict(self) -> dict:
        return asdict(self)


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


def train(model: nn.Module, train_split: Split, val_split: Split, config: PretrainConfig) -> TrainResult:
    """Adam over shuffled batches; keeps the state with the best validation ``select_metric``."""
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start = time.perf_counter()
    best = TrainResult(copy.deepcopy(model.state_dict()), -1, float("-inf"))
    stale = 0
    bar = tqdm(range(config.epochs), desc=f"{config.model}/{config.loss}", disable=not config.progress)
    for epoch in bar:
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
        bar.set_postfix(loss=f"{total / max(batches, 1):.4f}", val=f"{val:.4f}")
        if val > best.best_val:
            best.state, best.best_epoch, best.best_val = copy.deepcopy(model.state_dict()), epoch, val
            stale = 0
        else:
            stale += 1
            if stale >= config.patience and epoch + 1 >= config.min_epochs:
                break
    best.seconds = time.perf_counter() - start
    model.load_state_dict(best.state)
    return best
