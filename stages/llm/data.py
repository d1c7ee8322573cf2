"""Training and validation data from a ``prompts`` artifact, read with pyarrow alone.

Train rows carry no candidates: each epoch redraws them from (seed, epoch, row) (``draw_candidates``),
renders the prompt with ``render_prompt`` and tokenizes per micro-batch (the mode of a batch is only
known when the curriculum decides it). Micro-batches are length-grouped: rows are shuffled, cut into
chunks of ``GROUP`` micro-batches, each chunk sorted by estimated token length and cut into
micro-batches, and the micro-batch order is shuffled. A step takes ``micro_per_step`` consecutive
micro-batches of that list; rank r takes those with index % world == r. The list depends only on
(seed, epoch, micro batch size, micro_per_step), so 1 or N processes see the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from transformers import PreTrainedTokenizerBase

from stages.candidates import draw_candidates
from stages.llm.backbone import SpecialTokenIds
from stages.llm.inputs import read_prompts_info
from stages.llm.prompts import read_eval_prompts
from stages.llm.templates import IGNORE_INDEX, TemplateChoice, encode, render_prompt

GROUP = 50


@dataclass
class Batch:
    """One padded micro-batch. Right padding; labels are IGNORE_INDEX outside the answers."""

    input_ids: torch.Tensor  # (B, L) int64
    attention_mask: torch.Tensor  # (B, L) int64
    labels: torch.Tensor  # (B, L) int64
    history_items: torch.Tensor  # (n_hist,) int64, row-major order of the history placeholders
    candidate_items: torch.Tensor  # (n_cans,) int64, row-major order of the candidate placeholders
    hybrid: bool

    @property
    def real_tokens(self) -> int:
        return int(self.attention_mask.sum())

    def to(self, device: torch.device | str) -> Batch:
        move = {
            k: getattr(self, k).to(device)
            for k in ("input_ids", "attention_mask", "labels", "history_items", "candidate_items")
        }
        return Batch(**move, hybrid=self.hybrid)


def pad_batch(
    input_ids: list[list[int]],
    prompt_lengths: list[int],
    histories: list[list[int]],
    candidates: list[list[int]],
    pad_id: int,
    hybrid: bool,
    multiple_of: int = 1,
) -> Batch:
    """Right-pad encoded examples into a Batch; the loss covers tokens from ``prompt_length`` on."""
    longest = max(len(ids) for ids in input_ids)
    width = -(-longest // multiple_of) * multiple_of
    ids = torch.full((len(input_ids), width), pad_id, dtype=torch.long)  # (B, L)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE_INDEX)
    for b, (row, start) in enumerate(zip(input_ids, prompt_lengths, strict=True)):
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
        labels[b, start : len(row)] = ids[b, start : len(row)]
    flat = lambda lists: torch.tensor([i for items in lists for i in items], dtype=torch.long)  # noqa: E731
    return Batch(ids, mask, labels, flat(histories), flat(candidates), hybrid)


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
        self, rows: np.ndarray, candidates: list[list[int]], template: int, hybrid: bool, multiple_of: int = 1
    ) -> Batch:
        """Render, tokenize and pad the train rows at positions ``rows``."""
        histories = [self.train_history[i].tolist() for i in rows]
        cans = [candidates[i] for i in rows]
        prompts = [
            render_prompt(self.templates[template], self.titles, h, c, hybrid)
            for h, c in zip(histories, cans, strict=True)
        ]
        answers = [self.titles[int(self.train_target[i])] for i in rows]
        encoded = encode(self.tokenizer, prompts, answers)
        batch = pad_batch(
            [e.input_ids for e in encoded],
            [e.prompt_length for e in encoded],
            histories,
            cans,
            int(self.tokenizer.pad_token_id),
            hybrid,
            multiple_of,
        )
        if hybrid:  # here on the CPU, so that the forward pass needs no host sync to check it
            for token, items in (
                (self.tokens.history, batch.history_items),
                (self.tokens.cans, batch.candidate_items),
            ):
                if int((batch.input_ids == token).sum()) != items.numel():
                    raise ValueError(f"{self.directory}: a title contains a placeholder token ({token})")
        return batch

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
