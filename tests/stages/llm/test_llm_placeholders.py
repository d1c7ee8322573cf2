"""Every ``[HistoryEmb]`` / ``[CansEmb]`` carries the projected embedding of the item whose title it tags.

That is the title right before it (LLaRA's ``title [CansEmb]``, ``item_order="title-first"``) or right
after it (``[CansEmb] title``, ``item_order="token-first"``); every check runs for both orders, each on
its own prompts artifact.

Why: a history whose embeddings are shifted against its titles looks exactly like a model that cannot
compare a candidate with the history, so the alignment is pinned here, in every path that feeds a
hybrid prompt to the LLM: training batches (cached-piece assembly and the tokenizer), validation-loss
batches, candidate scoring (both scorers, rows split over forwards) and generation, under each of the
domain's templates. The prompts are real: the LLaRA authors' released LastFM split (``../shared``),
imported by the preprocess stage, whose artist names hold punctuation, ", " and non-Latin scripts.

The item table and the projector are made decodable: ``projector(E[i]) == (i, MARK, 0, ..., 0)`` exactly,
so the item at a position of the LLM's ``inputs_embeds`` is read off its first coordinate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import PreTrainedTokenizerBase

from stages.llm import prompts
from stages.llm.backbone import CACHE_ENV, SpecialTokenIds, load_backbone
from stages.llm.config import PromptsConfig
from stages.llm.data import Batch, PromptData
from stages.llm.generation import GenerationConfigEval, evaluate_generation
from stages.llm.model import LlaraModel, PromptLM, build_llara_model, project_items
from stages.llm.rows import EmbedFn, EvalRow, hybrid_embed_fn
from stages.llm.scoring import ScoringConfig, score_candidates
from stages.llm.templates import CANS_SLOT, COUNT_SLOT, HISTORY_SLOT, ITEM_ORDERS
from stages.llm.validation import Validator
from stages.preprocess import PrepareConfig
from stages.preprocess import run as prepare
from tests.needs import shared

VAL_ROWS = 8
"""Validation rows per template: histories of 3, 7 and 10 items, titles with ", " and accents."""
SHIFT = 10.0
"""Bias that puts the projector's hidden unit where GELU is the identity in fp32 (erf(7.07) == 1)."""
MARK = 1000.0
"""Second coordinate of every projected item: no token embedding (the zero ``<pad>`` row) reads as one."""
assert ITEM_ORDERS == ("title-first", "token-first")  # the orders the rig is built for


@dataclass
class Checker:
    """Reads the item off each placeholder's input vector and compares it with the prompt text."""

    tokenizer: PreTrainedTokenizerBase
    tokens: SpecialTokenIds
    titles: list[str]
    templates: list[str]
    table: torch.Tensor  # (vocab, d) the LLM's token embeddings
    item_order: str  # "title-first": ``title TOKEN``; "token-first": ``TOKEN title``

    def item_of(self, vector: torch.Tensor) -> int | None:
        """The item whose projection ``vector`` is, or None (not exactly ``(i, MARK, 0, ..., 0)``)."""
        first = float(vector[0])
        if (
            not first.is_integer()
            or not 0 <= first < len(self.titles)
            or float(vector[1]) != MARK
            or bool(vector[2:].any())
        ):
            return None
        return int(first)

    def _pieces(self, template: int, n_candidates: int) -> tuple[str, str, str]:
        """The template text before the history, between the history and the candidates, and after."""
        text = self.templates[template].replace(COUNT_SLOT, str(n_candidates))
        before, rest = text.split(HISTORY_SLOT)
        middle, after = rest.split(CANS_SLOT)
        return before, middle, after

    def _text(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def errors(
        self,
        ids: Sequence[int],
        vectors: torch.Tensor,
        history: Sequence[int],
        candidates: Sequence[int],
        template: int,
    ) -> list[str]:
        """What is wrong with one prompt row: ids (L,) and the LLM's input vectors there, (L, d).

        The text is cut at the placeholders: segment k lies before placeholder k, the last one after
        the last placeholder (to the end of ``ids``: answer and padding may follow the prompt).
        Title-first: segment k must be the list's lead (template text, else ", ") + the title of the
        item read off placeholder k + " ", and the last segment start with the template's tail.
        Token-first: segment 0 must be the template's head, and segment k + 1 must be " " + the title
        of the item read off placeholder k + what follows it in the prompt (", " inside a list, the
        template text between the lists, or, for the last candidate, the template's tail).
        The items read off the history and candidate placeholders must be the row's history and
        candidates, in order; every other position must hold its token's own embedding (nothing
        written beside the placeholders).
        """
        kinds = {self.tokens.history: "history", self.tokens.cans: "candidates"}
        before, middle, after = self._pieces(template, len(candidates))
        leads = {"history": before, "candidates": middle}
        title_first = self.item_order == "title-first"
        assert title_first or self.item_order == "token-first", self.item_order
        errors = []
        places = []
        for p, token in enumerate(ids):
            if token in kinds:
                places.append(p)
            elif not torch.equal(vectors[p], self.table[token]):
                errors.append(f"position {p} ({token}) is not its token's embedding")
        bounds = [-1, *places, len(ids)]
        segments = [self._text(ids[a + 1 : b]) for a, b in zip(bounds, bounds[1:], strict=False)]
        if title_first and not segments[-1].startswith(after):
            errors.append(f"the text after the last placeholder, {segments[-1][:60]!r}, is not {after!r}")
        if not title_first and segments[0] != before:
            errors.append(f"the text before the first placeholder, {segments[0]!r}, is not {before!r}")
        read: dict[str, list[int]] = {kind: [] for kind in kinds.values()}
        for k, p in enumerate(places):
            kind, item = kinds[ids[p]], self.item_of(vectors[p])
            if item is None:
                errors.append(f"{kind} placeholder at {p} holds no item")
                continue
            title = self.titles[item]
            if title_first:
                segment = segments[k]
                good = segment == (", " if read[kind] else leads[kind]) + title + " "
                where = "after"
            else:
                segment = segments[k + 1]
                following = kinds[ids[places[k + 1]]] if k + 1 < len(places) else None
                if following is None:
                    good = segment.startswith(" " + title + after)
                else:
                    good = segment == " " + title + (", " if following == kind else middle)
                where = "before"
            if not good:
                shown = segment[-80:] if title_first else segment[:80]  # the title's end of it
                errors.append(f"{kind} placeholder at {p} holds {title!r} {where} {shown!r}")
            read[kind].append(item)
        for kind, items in (("history", history), ("candidates", candidates)):
            if read[kind] != list(items):
                errors.append(f"{kind} placeholders hold {read[kind]}, the row has {list(items)}")
        return errors


@dataclass
class Rig:
    """The decodable LLaRA model on the tiny-random backbone and the LastFM prompts."""

    model: LlaraModel
    tokenizer: PreTrainedTokenizerBase
    data: PromptData
    prompts_dir: Path
    checker: Checker


def make_decodable(model: LlaraModel) -> None:
    """``projector(e) = (e[0], MARK, 0, ..., 0)``: Linear puts ``e[0] + SHIFT`` in hidden unit 0, GELU
    keeps it, the second Linear takes SHIFT off and writes MARK by its bias; every other weight is zero."""
    projector = model.projector
    assert projector.norm is None and projector.user is None
    with torch.no_grad():
        for p in projector.parameters():
            p.zero_()
        first, last = projector.net[0], projector.net[2]
        first.weight[0, 0], first.bias[0] = 1.0, SHIFT
        last.weight[0, 0], last.bias[0], last.bias[1] = 1.0, -SHIFT, MARK


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LastFM (released split) prepared, once for both item orders."""
    release = shared("data", "llara-release", "lastfm")
    out = tmp_path_factory.mktemp("placeholders-dataset")
    prepare(PrepareConfig(source=f"llara-release:{release}", allow_pickle=True), {}, out)
    return out


@pytest.fixture(scope="module", params=ITEM_ORDERS)
def rig(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    backbone_cache: Path,
    dataset: Path,
) -> Rig:
    """The LastFM prompts for tiny-random in one item order, and the decodable model."""
    item_order: str = request.param
    prompts_dir = tmp_path_factory.mktemp(f"placeholders-{item_order}")
    config = PromptsConfig(backbone="tiny-random", max_eval_rows=VAL_ROWS, item_order=item_order)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(backbone_cache))
        prompts.run(config, {"dataset": dataset}, prompts_dir)
        backbone = load_backbone("tiny-random")
    data = PromptData(prompts_dir, backbone.tokenizer, seed=0)
    assert data.item_order == item_order  # training renders in the artifact's order
    table = torch.zeros(len(data.titles), 64)
    table[:, 0] = torch.arange(len(data.titles), dtype=torch.float32)
    model = build_llara_model(backbone, table, seed=0)
    make_decodable(model)
    weight = model.llm.get_input_embeddings().weight.detach()
    checker = Checker(backbone.tokenizer, backbone.tokens, data.titles, data.templates, weight, item_order)
    return Rig(model, backbone.tokenizer, data, prompts_dir, checker)


@contextmanager
def llm_inputs(rig: Rig) -> Iterator[list[torch.Tensor]]:
    """The ``inputs_embeds`` of every forward that reaches the decoder under LoRA (None: ids only)."""
    seen: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if kwargs.get("inputs_embeds") is not None:
            seen.append(kwargs["inputs_embeds"].detach().clone())

    handle = rig.model.llm.get_base_model().get_decoder().register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


Record = tuple[torch.Tensor, list[EvalRow], torch.Tensor]


def recording(embed: EmbedFn, calls: list[Record]) -> EmbedFn:
    """``embed``, keeping each call's prompt ids (B, T), rows and output (B, T, d)."""

    def wrapped(input_ids: torch.Tensor, rows: Sequence[EvalRow]) -> torch.Tensor:
        out = embed(input_ids, rows)
        calls.append((input_ids.clone(), list(rows), out.detach().clone()))
        return out

    return wrapped


def eval_errors(rig: Rig, calls: list[Record], reached: list[torch.Tensor]) -> list[str]:
    """Check every prompt an evaluator embedded, and that those embeddings are what the LLM got."""
    errors = []
    assert calls and len(reached) == len(calls)
    for (ids, rows, out), got in zip(calls, reached, strict=True):
        assert torch.equal(got[:, : out.shape[1]], out)
        for b, row in enumerate(rows):
            found = rig.checker.errors(
                ids[b].tolist(), out[b], row.history_ids, row.candidate_ids, row.template
            )
            errors += [f"row {row.row_id} template {row.template}: {e}" for e in found]
    return errors


def val_rows(rig: Rig, template: int) -> list[EvalRow]:
    return prompts.load_rows(rig.prompts_dir, "val", "hybrid", template=template)


def has_hard_titles(rig: Rig, items: Sequence[int]) -> bool:
    """Whether the items include a non-ASCII title and a title holding the list separator ", "."""
    titles = [rig.data.titles[i] for i in items]
    return any(not t.isascii() for t in titles) and any(", " in t for t in titles)


def train_rows(rig: Rig, candidates: list[list[int]]) -> np.ndarray:
    """Train rows with what could break alignment: ", " or non-ASCII titles, shortest / longest history."""
    titles, histories = rig.data.titles, rig.data.train_history
    wanted = (
        lambda h, c: any(", " in titles[i] for i in h),
        lambda h, c: any(not titles[i].isascii() for i in h),
        lambda h, c: any(", " in titles[i] for i in c),
        lambda h, c: any(not titles[i].isascii() for i in c),
        lambda h, c: len(h) == 3,
        lambda h, c: len(h) == 10,
    )
    picked = [next(r for r, h in enumerate(histories) if want(h.tolist(), candidates[r])) for want in wanted]
    return np.array(sorted(set(picked)))


def test_projected_items_decode_exactly(rig: Rig) -> None:
    """The decoder is exact for all items, and no token embedding reads as an item."""
    model, n = rig.model, len(rig.data.titles)
    with torch.no_grad():
        projected = project_items(model.projector, model.item_embeddings, torch.arange(n))
    assert torch.equal(projected[:, 0], torch.arange(n, dtype=torch.float32))
    assert (projected[:, 1] == MARK).all() and not projected[:, 2:].any()
    assert [rig.checker.item_of(v) for v in projected[:: n // 50]] == list(range(0, n, n // 50))
    assert all(rig.checker.item_of(row) is None for row in rig.checker.table)


@pytest.mark.parametrize("assembled", [True, False], ids=["pieces", "tokenizer"])
def test_training_batches_align_items_with_titles(
    rig: Rig, assembled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training (``train_batch`` + ``Batch.loss`` through ``PromptLM``), every template, both encoders."""
    data = rig.data
    assert data.assembled  # the default path for this tokenizer; "tokenizer" forces the fallback
    monkeypatch.setattr(data, "assembled", assembled)
    candidates = data.epoch_candidates(0)
    rows = train_rows(rig, candidates)
    assert has_hard_titles(rig, [i for r in rows for i in (*data.train_history[r], *candidates[r])])
    lm = PromptLM(rig.model.llm, rig.model.tokens)
    errors = []
    for template in range(len(data.templates)):
        batch = data.train_batch(rows, candidates, template, hybrid=True)
        with llm_inputs(rig) as reached:
            batch.loss(lm, rig.model.projector, rig.model.item_embeddings)
        (emb,) = reached  # (B, L, d)
        for b, r in enumerate(rows):
            found = rig.checker.errors(
                batch.input_ids[b].tolist(), emb[b], data.train_history[r].tolist(), candidates[r], template
            )
            errors += [f"train row {r} template {template}: {e}" for e in found]
    assert not errors, "\n".join(errors[:20])


def test_validation_loss_batches_align_items_with_titles(rig: Rig) -> None:
    """The validation loss (``Validator._loss``: stored prompt ids, ``pad_batch``, ``Batch.loss``)."""
    validator = Validator(rig.prompts_dir, "val_loss", True, seed=0, max_rows=None, batch_size=3)
    lm = PromptLM(rig.model.llm, rig.model.tokens)
    seen_ids: list[torch.Tensor] = []
    handle = lm.register_forward_pre_hook(lambda module, args: seen_ids.append(args[0].clone()))
    try:
        with llm_inputs(rig) as reached:
            validator.value(rig.model, lm, rig.tokenizer, lambda x: x)
    finally:
        handle.remove()
    rows = validator.rows
    assert len(seen_ids) == len(reached) == -(-len(rows) // 3)
    errors = []
    for start, (ids, emb) in enumerate(zip(seen_ids, reached, strict=True)):
        for b, row in enumerate(rows[3 * start : 3 * start + 3]):
            found = rig.checker.errors(
                ids[b].tolist(), emb[b], row.history_ids, row.candidate_ids, row.template
            )
            errors += [f"val row {row.row_id} template {row.template}: {e}" for e in found]
    assert not errors, "\n".join(errors[:20])


def test_candidate_scoring_aligns_items_with_titles(rig: Rig) -> None:
    """Candidate scoring (validation's probes and selection metric), every template: the masked scorer
    (rows packed together, and each row split over forwards that repeat its prompt) and cache-copy."""
    rows_of = {t: val_rows(rig, t) for t in range(len(rig.data.templates))}
    assert has_hard_titles(rig, [i for r in rows_of[0] for i in (*r.history_ids, *r.candidate_ids)])
    longest = max(len(r.prompt_ids or ()) for rows in rows_of.values() for r in rows)
    configs = {
        "masked": ScoringConfig(),
        "masked-split": ScoringConfig(max_tokens_per_forward=longest + 60),
        "cache_copy": ScoringConfig(method="cache_copy", prompt_batch_size=3),
    }
    errors = []
    for name, config in configs.items():
        for rows in rows_of.values():
            calls: list[Record] = []
            embed = recording(hybrid_embed_fn(rig.model), calls)
            with llm_inputs(rig) as reached:
                score_candidates(rig.model.llm, rig.tokenizer, rows, embed, config)
            if name == "masked-split":  # a row's prompt is embedded again for each piece of it
                pieces = [r.row_id for call in calls for r in call[1]]
                assert len(pieces) > len(set(pieces))
            assert sorted({r.row_id for call in calls for r in call[1]}) == [r.row_id for r in rows]
            errors += [f"{name}: {e}" for e in eval_errors(rig, calls, reached)]
    assert not errors, "\n".join(errors[:20])


def test_generation_aligns_items_with_titles(rig: Rig) -> None:
    """Generation (``evaluate_generation``, left-padded batches), every template."""
    config = GenerationConfigEval(batch_size=3, max_new_tokens=2)
    errors = []
    for template in range(len(rig.data.templates)):
        rows = val_rows(rig, template)
        calls: list[Record] = []
        embed = recording(hybrid_embed_fn(rig.model), calls)
        with llm_inputs(rig) as reached:
            evaluate_generation(rig.model.llm, rig.tokenizer, rows, embed, config)
        assert sorted(r.row_id for call in calls for r in call[1]) == [r.row_id for r in rows]
        errors += eval_errors(rig, calls, reached)
    assert not errors, "\n".join(errors[:20])


def test_checker_catches_misaligned_items(rig: Rig) -> None:
    """Negative control, in the rig's item order: shifted or reversed items, or no items at all, are
    reported (the checks above cannot pass vacuously), and only in the rows that are wrong; and the
    other order's checker rejects every row (the prompts are in the order the rig asked for)."""
    data, model = rig.data, rig.model
    candidates = data.epoch_candidates(0)
    rows = train_rows(rig, candidates)
    lm = PromptLM(model.llm, model.tokens)
    batch = data.train_batch(rows, candidates, 0, hybrid=True)
    n_first = len(data.train_history[rows[0]])
    reverse_first = batch.history_items.clone()
    reverse_first[:n_first] = reverse_first[:n_first].flip(0)

    def row_errors(bad: Batch, checker: Checker = rig.checker) -> list[list[str]]:
        with llm_inputs(rig) as reached:
            bad.loss(lm, model.projector, model.item_embeddings)
        (emb,) = reached
        return [
            checker.errors(
                batch.input_ids[b].tolist(), emb[b], data.train_history[r].tolist(), candidates[r], 0
            )
            for b, r in enumerate(rows)
        ]

    assert not any(row_errors(batch))
    (other,) = set(ITEM_ORDERS) - {rig.checker.item_order}
    assert all(row_errors(batch, replace(rig.checker, item_order=other)))
    shifted_history = row_errors(replace(batch, history_items=batch.history_items.roll(1)))
    shifted_candidates = row_errors(replace(batch, candidate_items=batch.candidate_items.roll(1)))
    reversed_first = row_errors(replace(batch, history_items=reverse_first))
    not_replaced = row_errors(replace(batch, hybrid=False))
    assert all(shifted_history) and all(shifted_candidates) and all(not_replaced)
    assert any("holds no item" in e for e in not_replaced[0])
    assert reversed_first[0] and not any(reversed_first[1:])
    where = "after" if rig.checker.item_order == "title-first" else "before"
    assert any(e.startswith("history placeholder") and f" {where} " in e for e in reversed_first[0])
    assert any(e.startswith("history placeholders hold") for e in reversed_first[0])

    # an evaluator embedding another row's history than the prompt's
    rows_val = val_rows(rig, 1)[:3]
    swapped = [replace(r, history_ids=r.history_ids[::-1]) for r in rows_val]
    calls: list[Record] = []
    inner = hybrid_embed_fn(model)
    embed = recording(lambda ids, _rows: inner(ids, [swapped[rows_val.index(r)] for r in _rows]), calls)
    with llm_inputs(rig) as reached:
        score_candidates(model.llm, rig.tokenizer, rows_val, embed, ScoringConfig())
    found = eval_errors(rig, calls, reached)
    assert {e.split(":")[0] for e in found} == {f"row {r.row_id} template 1" for r in rows_val}
