"""Training and validation data from a ``prompts`` artifact, read with pyarrow alone.

Train rows carry no candidates: each epoch redraws them from (seed, epoch, row) (``draw_candidates``),
renders the prompt with ``render_prompt`` and encodes it per micro-batch (the mode of a batch is only
known when the curriculum decides it), from cached pieces (``stages.llm.assembly``) where that is
checked to equal the tokenizer. Micro-batches are length-grouped: rows are shuffled, cut into
chunks of ``GROUP`` micro-batches, each chunk sorted by estimated token length and cut into
micro-batches, and the micro-batch order is shuffled. A step takes ``micro_per_step`` consecutive
micro-batches of that list; rank r takes those with index % world == r. The list depends only on
(seed, epoch, micro batch size, micro_per_step), so 1 or N processes see the same batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from transformers import PreTrainedTokenizerBase

from stages.candidates import draw_candidates
from stages.llm.assembly import PieceEncoder
from stages.llm.backbone import SpecialTokenIds
from stages.llm.config import TemplateChoice
from stages.llm.inputs import read_prompts_info
from stages.llm.model import project_items, project_users
from stages.llm.prompts import read_eval_prompts
from stages.llm.rows import EvalRow
from stages.llm.templates import IGNORE_INDEX, encode, render_prompt

GROUP = 50


TENSORS = (
    "input_ids",
    "attention_mask",
    "labels",
    "logit_positions",
    "targets",
    "history_items",
    "candidate_items",
    "user_items",
)


@dataclass
class Batch:
    """One padded micro-batch. Right padding; labels are IGNORE_INDEX outside the answers.

    ``logit_positions`` / ``targets`` are the loss in gathered form: row b's positions that predict
    an answer token, and those tokens (IGNORE_INDEX where a row has fewer answer tokens than K).
    The model computes logits there only (``PromptLM``); ``labels`` is the same loss, spelled out.
    """

    input_ids: torch.Tensor  # (B, L) int64
    attention_mask: torch.Tensor  # (B, L) int64
    labels: torch.Tensor  # (B, L) int64
    logit_positions: torch.Tensor  # (B, K) int64, K = longest answer (title, newline, EOS)
    targets: torch.Tensor  # (B, K) int64
    history_items: torch.Tensor  # (n_hist,) int64, row-major order of the history placeholders
    candidate_items: torch.Tensor  # (n_cans,) int64, row-major order of the candidate placeholders
    user_items: torch.Tensor  # (B,) int64, each row's last history item (-1: none), for a user token
    hybrid: bool
    real_tokens: int = 0
    """Non-padding tokens, counted on the CPU when the batch is built (no device sync to read it)."""

    def pin_memory(self) -> Batch:
        return Batch(
            **{k: getattr(self, k).pin_memory() for k in TENSORS},
            hybrid=self.hybrid,
            real_tokens=self.real_tokens,
        )

    def loss(
        self, lm: torch.nn.Module, projector: torch.nn.Module, item_embeddings: torch.Tensor
    ) -> torch.Tensor:
        """``lm``'s answer loss on this batch (on the device already); ``lm`` is a ``PromptLM`` or
        the DeepSpeed engine wrapping one. A hybrid batch gets its items projected first.

        No attention mask goes to the model: the batch is right-padded, so under the causal mask
        alone a real token never sees a padding token (they all come after it) and its position
        ids are the same. Only the padding positions' outputs change, and no loss is read there.
        The mask-free path lets sdpa use its fused causal kernel instead of materialising
        (B, heads, L, L) masked scores: 1.14x per step on the CPU for SmolLM2 at micro-batch 8.
        """
        history = candidates = users = None
        if self.hybrid:
            history = project_items(projector, item_embeddings, self.history_items)
            candidates = project_items(projector, item_embeddings, self.candidate_items)
            if getattr(projector, "user", None) is not None:
                users = project_users(projector, item_embeddings, self.user_items)
        return lm(self.input_ids, None, self.logit_positions, self.targets, history, candidates, users)

    def to(self, device: torch.device | str) -> Batch:
        """The batch on ``device``; the copies are asynchronous from pinned memory."""
        move = {k: getattr(self, k).to(device, non_blocking=True) for k in TENSORS}
        return Batch(**move, hybrid=self.hybrid, real_tokens=self.real_tokens)


def pad_batch(
    input_ids: list[list[int]],
    prompt_lengths: list[int],
    histories: list[list[int]],
    candidates: list[list[int]],
    pad_id: int,
    hybrid: bool,
    multiple_of: int = 1,
    answer_multiple_of: int = 1,
) -> Batch:
    """Right-pad encoded examples into a Batch; the loss covers tokens from ``prompt_length`` on.

    ``multiple_of`` / ``answer_multiple_of`` round the length L and the answer width K up (a
    compiled model sees fewer distinct shapes).
    """
    longest = max(len(ids) for ids in input_ids)
    width = -(-longest // multiple_of) * multiple_of
    answer = max(len(row) - start for row, start in zip(input_ids, prompt_lengths, strict=True))
    answer = -(-answer // answer_multiple_of) * answer_multiple_of
    ids = np.full((len(input_ids), width), pad_id, dtype=np.int64)  # (B, L)
    mask = np.zeros_like(ids)
    labels = np.full_like(ids, IGNORE_INDEX)
    positions = np.zeros((len(input_ids), answer), dtype=np.int64)  # (B, K)
    targets = np.full_like(positions, IGNORE_INDEX)
    for b, (row, start) in enumerate(zip(input_ids, prompt_lengths, strict=True)):
        if start < 1:
            raise ValueError("an example needs at least one prompt token before its answer")
        n = len(row) - start
        ids[b, : len(row)] = row
        mask[b, : len(row)] = 1
        labels[b, start : len(row)] = ids[b, start : len(row)]
        positions[b] = start - 1  # padding entries repeat the first position; their target is ignored
        positions[b, :n] += np.arange(n)
        targets[b, :n] = ids[b, start : len(row)]
    flat = lambda lists: torch.tensor([i for items in lists for i in items], dtype=torch.long)  # noqa: E731
    as_tensor = torch.from_numpy
    return Batch(
        as_tensor(ids),
        as_tensor(mask),
        as_tensor(labels),
        as_tensor(positions),
        as_tensor(targets),
        flat(histories),
        flat(candidates),
        torch.tensor([h[-1] if len(h) else -1 for h in histories], dtype=torch.long),
        hybrid,
        int(mask.sum()),
    )


class PromptData:
    """A ``prompts`` artifact: train rows, titles, templates and the materialized eval prompts."""

    def __init__(
        self,
        directory: Path,
        tokenizer: PreTrainedTokenizerBase,
        seed: int = 0,
        max_train_rows: int | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.info = read_prompts_info(self.directory, vocab_size=len(tokenizer))
        self.tokenizer, self.seed = tokenizer, seed
        self.tokens = SpecialTokenIds.of(tokenizer)
        self.templates: list[str] = self.info["templates"]
        self.item_order: str = self.info.get("item_order", "title-first")
        self.n_candidates: int = self.info["n_candidates"]
        self.titles: list[str] = pq.read_table(self.directory / "titles.parquet").column("title").to_pylist()
        train = pq.read_table(self.directory / "train.parquet")
        rows = np.arange(train.num_rows)
        if max_train_rows is not None and max_train_rows < len(rows):
            rows = np.sort(np.random.default_rng([seed, 99]).permutation(len(rows))[:max_train_rows])
            train = train.take(rows)
        self.train_history = [np.asarray(h, dtype=np.int64) for h in train.column("history").to_pylist()]
        self.train_target = train.column("target").to_numpy().astype(np.int64)
        self.train_row = train.column("row").to_numpy().astype(np.int64)
        pieces = tokenizer([" " + t for t in self.titles], add_special_tokens=False)["input_ids"]
        self.title_tokens = np.array(
            [len(p) + 2 for p in pieces], dtype=np.int64
        )  # title, space, placeholder, ","
        self.pieces = PieceEncoder(tokenizer)
        self.assembled = self._assembly_agrees()
        if not self.assembled:
            logging.getLogger("llara.finetune").info(
                "%s: prompt assembly differs from the tokenizer; tokenizing each batch", self.directory
            )

    def _assembly_agrees(self, rows: int = 16) -> bool:
        """Whether cached-piece assembly equals the tokenizer on sample rows of every template and mode."""
        sample = np.arange(min(rows, self.train_rows))
        candidates = self.epoch_candidates(0)
        prompts, answers = [], []
        for template in self.templates:
            for hybrid in (False, True):
                for i in sample:
                    h, c = self.train_history[i].tolist(), candidates[i]
                    prompts.append(render_prompt(template, self.titles, h, c, hybrid, self.item_order))
                    answers.append(self.titles[int(self.train_target[i])])
        return self.pieces.agrees_with_tokenizer(prompts, answers)

    @property
    def train_rows(self) -> int:
        return len(self.train_target)

    def epoch_candidates(self, epoch: int) -> list[list[int]]:
        """This epoch's candidates of every train row (row ids of the full split key the draw)."""
        drawn = draw_candidates(
            self.train_history,
            self.train_target,
            len(self.titles),
            n_candidates=self.n_candidates,
            seed=self.seed,
            epoch=epoch,
            row_ids=self.train_row,
        )
        return drawn.tolist()

    def estimated_lengths(self, candidates: list[list[int]]) -> np.ndarray:
        """Token-length estimate per train row (prompt template overhead excluded), (rows,)."""
        t = self.title_tokens
        return np.array(
            [
                t[h].sum() + t[c].sum() + t[y]
                for h, c, y in zip(self.train_history, candidates, self.train_target, strict=True)
            ]
        )

    def micro_batches(
        self,
        epoch: int,
        micro_batch: int,
        micro_per_step: int,
        candidates: list[list[int]],
        group: bool = True,
    ) -> list[np.ndarray]:
        """The epoch's micro-batches (arrays of train-row positions), a multiple of ``micro_per_step``."""
        rng = np.random.default_rng([self.seed, epoch, 3])
        order = rng.permutation(self.train_rows)
        if group:
            lengths = self.estimated_lengths(candidates)
            chunk = micro_batch * GROUP
            order = np.concatenate(
                [
                    c[np.argsort(-lengths[c], kind="stable")]
                    for c in np.array_split(order, range(chunk, len(order), chunk))
                ]
            )
        batches = [order[i : i + micro_batch] for i in range(0, len(order) - micro_batch + 1, micro_batch)]
        if group:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        keep = len(batches) // micro_per_step * micro_per_step
        return batches[:keep]

    def template_of(self, epoch: int, micro_index: int) -> int:
        """The template of a micro-batch, drawn from (seed, epoch, micro-batch index)."""
        return int(np.random.default_rng([self.seed, epoch, micro_index, 5]).integers(len(self.templates)))

    def train_batch(
        self,
        rows: np.ndarray,
        candidates: list[list[int]],
        template: int,
        hybrid: bool,
        multiple_of: int = 1,
        answer_multiple_of: int = 1,
    ) -> Batch:
        """Render, tokenize and pad the train rows at positions ``rows``."""
        histories = [self.train_history[i].tolist() for i in rows]
        cans = [candidates[i] for i in rows]
        prompts = [
            render_prompt(self.templates[template], self.titles, h, c, hybrid, self.item_order)
            for h, c in zip(histories, cans, strict=True)
        ]
        answers = [self.titles[int(self.train_target[i])] for i in rows]
        encoded = (
            self.pieces.encode(prompts, answers)
            if self.assembled
            else encode(self.tokenizer, prompts, answers)
        )
        batch = pad_batch(
            [e.input_ids for e in encoded],
            [e.prompt_length for e in encoded],
            histories,
            cans,
            int(self.tokenizer.pad_token_id),
            hybrid,
            multiple_of,
            answer_multiple_of,
        )
        if hybrid:  # here on the CPU, so that the forward pass needs no host sync to check it
            for token, items in (
                (self.tokens.history, batch.history_items),
                (self.tokens.cans, batch.candidate_items),
            ):
                if int((batch.input_ids == token).sum()) != items.numel():
                    raise ValueError(f"{self.directory}: a title contains a placeholder token ({token})")
        return batch

    def fit_rows(self, n: int, hybrid: bool) -> list[EvalRow]:
        """A fixed sample of ``n`` training rows as evaluation rows: the "fit" probe.

        The rows (drawn from the seed), their epoch-0 candidates (what the first epoch trained on)
        and a template per row from (seed, row) stay the same for the whole run and on resume.
        """
        picked = np.sort(np.random.default_rng([self.seed, 77]).permutation(self.train_rows)[:n])
        if len(picked) == 0:
            return []
        candidates = self.epoch_candidates(0)
        templates = [
            int(np.random.default_rng([self.seed, int(self.train_row[i]), 6]).integers(len(self.templates)))
            for i in picked
        ]
        histories = [self.train_history[i].tolist() for i in picked]
        prompts = [
            render_prompt(self.templates[t], self.titles, h, candidates[i], hybrid, self.item_order)
            for t, h, i in zip(templates, histories, picked, strict=True)
        ]
        answers = [self.titles[int(self.train_target[i])] for i in picked]
        encoded = encode(self.tokenizer, prompts, answers)
        return [
            EvalRow(
                row_id=int(self.train_row[i]),
                user_id=int(self.train_row[i]),
                prompt=prompt,
                target_id=int(self.train_target[i]),
                candidate_ids=tuple(int(c) for c in candidates[i]),
                candidate_titles=tuple(self.titles[c] for c in candidates[i]),
                history_ids=tuple(history),
                prompt_ids=tuple(e.input_ids[: e.prompt_length]),
                template=template,
                target_answer_ids=tuple(e.input_ids[e.prompt_length :]),
            )
            for i, prompt, history, template, e in zip(
                picked, prompts, histories, templates, encoded, strict=True
            )
        ]

    def eval_batches(
        self,
        split: str,
        hybrid: bool,
        micro_batch: int,
        template: TemplateChoice = "draw",
        max_rows: int | None = None,
    ) -> list[Batch]:
        """Padded batches of a materialized evaluation split for one mode and template choice."""
        mode = "hybrid" if hybrid else "text"
        table = read_eval_prompts(self.directory, split, mode, template, self.seed, max_rows)
        cols = {
            c: table.column(c).to_pylist() for c in ("input_ids", "prompt_length", "history", "candidates")
        }
        pad = int(self.tokenizer.pad_token_id)
        return [
            pad_batch(
                cols["input_ids"][i : i + micro_batch],
                cols["prompt_length"][i : i + micro_batch],
                cols["history"][i : i + micro_batch],
                cols["candidates"][i : i + micro_batch],
                pad,
                hybrid,
            )
            for i in range(0, table.num_rows, micro_batch)
        ]
