"""Validation during fine-tuning: the selection metric of the model being trained, on the val split.

The rows are those the evaluate stage reads (``stages.llm.prompts.load_rows``) with each row's template
drawn from (seed, row), hybrid unless the schedule is ``text``; the metrics are the evaluate stage's
own (candidate scoring, generation with the paper's substring rule, or the answer loss), so a
selected step means on validation what the test table means on test.

Beside the selection metric every validation records the learning probes (SPEC §4): candidate
scoring's HR@1, mean reciprocal rank and candidate NLL (minus the log-softmax of the target's score
over the row's candidates; uniform is ln(candidates)), on the validation rows (``val_*``) and on a
fixed sample of training rows (``fit_*``, ``PromptData.fit_rows``). Fit at chance: the model does
not learn the task; fit high and validation low: it does not generalise.

Several processes: under ZeRO-3 every rank scores every row (each forward gathers parameters
collectively, so all ranks must run the same passes); otherwise rank r scores rows r, r + world, ...
and the hit counts are summed over ranks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from stages.llm.data import pad_batch
from stages.llm.generation import GenerationConfigEval, evaluate_generation
from stages.llm.model import LlaraModel
from stages.llm.prompts import load_rows
from stages.llm.rows import EvalRow, hybrid_embed_fn, pad_id
from stages.llm.scoring import ScoringConfig, score_candidates
from stages.metrics import candidate_probes, rank_of_target

Reduce = Callable[[float], float]
"""Sum of a float over ranks (identity in one process)."""


class Validator:
    """Scores one model state on the validation rows by one metric."""

    def __init__(
        self,
        prompts_dir: Path,
        metric: str,
        hybrid: bool,
        seed: int,
        max_rows: int | None,
        batch_size: int,
        rank: int = 0,
        world: int = 1,
        shard: bool = True,
        fit_rows: Sequence[EvalRow] = (),
    ) -> None:
        self.metric, self.hybrid, self.batch_size, self.pad_id = metric, hybrid, batch_size, 0
        rows = load_rows(prompts_dir, "val", "hybrid" if hybrid else "text", "draw", max_rows, seed)
        self.sharded = shard and world > 1
        self.rows: Sequence[EvalRow] = rows[rank::world] if self.sharded else rows
        self.fit_rows: Sequence[EvalRow] = fit_rows[rank::world] if self.sharded else fit_rows

    @torch.no_grad()
    def measure(self, model: LlaraModel, lm: torch.nn.Module, tokenizer, reduce: Reduce) -> dict[str, float]:
        """The selection metric (``value``) and the probes ``val_hr1/mrr/nll`` (and ``fit_*`` with
        ``fit_seconds``, what the fit sample cost) now."""
        self.pad_id = pad_id(tokenizer)
        probes = {f"val_{k}": v for k, v in self._probes(model, tokenizer, self.rows, reduce).items()}
        if self.fit_rows:
            start = time.perf_counter()
            fit = self._probes(model, tokenizer, self.fit_rows, reduce, fit=True)
            probes |= {f"fit_{k}": v for k, v in fit.items()} | {"fit_seconds": time.perf_counter() - start}
        value = (
            probes["val_hr1"] if self.metric == "scoring_hr1" else self.value(model, lm, tokenizer, reduce)
        )
        return {"value": value, **probes}

    def _probes(
        self, model: LlaraModel, tokenizer, rows: Sequence[EvalRow], reduce: Reduce, fit: bool = False
    ) -> dict[str, float]:
        """Candidate scoring's HR@1, MRR and candidate NLL, averaged over ``rows`` of every rank."""
        sums = np.zeros(3)
        if rows:
            embed = hybrid_embed_fn(model) if self.hybrid else None
            config = ScoringConfig(prompt_batch_size=max(1, self.batch_size // 2))
            scores, _ = score_candidates(model.llm, tokenizer, rows, embed, config)  # (rows, candidates)
            target = np.array([r.target_index for r in rows], dtype=np.int64)
            if fit:
                scores = _same_answers_out(scores, rows)
            hit, reciprocal, nll = candidate_probes(scores, target)
            sums = np.array([hit.sum(), reciprocal.sum(), nll.sum()], dtype=np.float64)
        count = float(len(rows))
        if self.sharded:
            sums, count = np.array([reduce(float(x)) for x in sums]), reduce(count)
        hr1, mrr, nll = (sums / max(count, 1.0)).tolist()
        return {"hr1": hr1, "mrr": mrr, "nll": nll}

    @torch.no_grad()
    def value(self, model: LlaraModel, lm: torch.nn.Module, tokenizer, reduce: Reduce) -> float:
        """The metric of ``model`` now; ``lm`` is the engine (or module) computing the loss."""
        self.pad_id = pad_id(tokenizer)
        total = reduce(float(len(self.rows))) if self.sharded else float(len(self.rows))
        if self.metric == "val_loss":
            loss_sum, tokens = self._loss(model, lm)
            if self.sharded:
                loss_sum, tokens = reduce(loss_sum), reduce(tokens)
            return loss_sum / max(tokens, 1e-9)
        embed = hybrid_embed_fn(model) if self.hybrid else None
        if self.metric == "scoring_hr1":
            config = ScoringConfig(prompt_batch_size=max(1, self.batch_size // 2))
            scores, _ = score_candidates(model.llm, tokenizer, self.rows, embed, config)
            target = np.array([r.target_index for r in self.rows], dtype=np.int64)
            hits = float((rank_of_target(scores, target) == 0).sum()) if len(self.rows) else 0.0
        else:
            gen = GenerationConfigEval(batch_size=self.batch_size)
            result = evaluate_generation(model.llm, tokenizer, self.rows, embed, gen)
            hits = float(sum(m.correct for m in result.matches))
        hits = reduce(hits) if self.sharded else hits
        return hits / max(total, 1.0)

    def _loss(self, model: LlaraModel, lm: torch.nn.Module) -> tuple[float, float]:
        """Summed answer-token loss and answer-token count over this rank's rows."""
        device = next(model.projector.parameters()).device
        loss_sum, count = 0.0, 0.0
        for start in range(0, len(self.rows), self.batch_size):
            part = self.rows[start : start + self.batch_size]
            ids = [list(r.prompt_ids or ()) for r in part]
            answers = [list(r.target_answer_ids or ()) for r in part]
            batch = pad_batch(
                [p + a for p, a in zip(ids, answers, strict=True)],
                [len(p) for p in ids],
                [list(r.history_ids) for r in part],
                [list(r.candidate_ids) for r in part],
                pad_id=self.pad_id,
                hybrid=self.hybrid,
            ).to(device)
            n = float(sum(len(a) for a in answers))
            loss = batch.loss(lm, model.projector, model.item_embeddings)
            loss_sum, count = loss_sum + float(loss) * n, count + n
        return loss_sum, count


def _same_answers_out(scores: np.ndarray, rows: Sequence[EvalRow]) -> np.ndarray:
    """``scores`` (rows, candidates) with -inf for every candidate titled as its row's target.

    Training rows draw their negatives from all items; where titles repeat (the synthetic tasks'
    few words) a negative can carry the target's title, which is the same answer, not a wrong one.
    Validation rows keep their frozen candidates as the evaluate stage scores them.
    """
    same = [
        [
            c != r.target_index and t == r.candidate_titles[r.target_index]
            for c, t in enumerate(r.candidate_titles)
        ]
        for r in rows
    ]
    return np.where(np.array(same, dtype=bool), -np.inf, scores)
