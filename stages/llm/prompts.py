"""Stage ``prompts``: materialize the LLaRA prompts of a prepared dataset for one backbone's tokenizer.

Inputs: ``{"dataset": <prepared dataset dir>}`` (items.parquet, examples.parquet, dataset.json).

Outputs (read with pyarrow alone by ``stages.llm.data`` and by the evaluator):

- ``prompts.parquet``: validation and test rows, one per (split, mode, template, row), fully rendered
  and tokenized: ``split``, ``mode`` (text/hybrid), ``template`` int8, ``row`` int32 (index within
  the split), ``user_id``, ``history`` / ``candidates`` list<int32>, ``target`` int32,
  ``target_index`` int8 (position of the target among the candidates), ``prompt`` and ``target_text``
  str, ``input_ids`` list<int32> (prompt, answer, EOS), ``prompt_length`` int32 (``input_ids[:n]`` is
  the prompt), ``history_positions`` / ``candidate_positions`` list<int32> (token positions of the
  placeholder after each history / candidate item; ``[PH]`` in text mode).
- ``train.parquet``: ``row``, ``user_id``, ``history``, ``target``. Train candidates are redrawn
  every epoch from (seed, epoch, row), so train prompts cannot be frozen: the loader renders them
  with the same ``render_prompt`` and tokenizes them per batch (``stages.llm.data``).
- ``titles.parquet``: ``item_id`` int32, ``title`` str.
- ``prompts.json``: backbone spec, domain, templates, candidate count, rows per split, token ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stages.contract import check_candidates, read_meta
from stages.errors import DataError
from stages.llm.backbone import SpecialTokenIds, load_tokenizer
from stages.llm.config import PromptsConfig, TemplateChoice
from stages.llm.rows import EvalRow
from stages.llm.templates import (
    MODES,
    TEMPLATES,
    draw_template,
    encode,
    render_prompt,
    template_indices,
)

NAME = "prompts"
EVAL_SPLITS = ("val", "test")


def read_dataset(directory: Path) -> tuple[dict, pa.Table, pa.Table]:
    """(dataset.json, items, examples) of a prepared dataset, with the contract's columns checked."""
    meta_path, items_path, examples_path = (
        directory / n for n in ("dataset.json", "items.parquet", "examples.parquet")
    )
    for path in (meta_path, items_path, examples_path):
        if not path.is_file():
            raise DataError(path, None, "missing from the prepared dataset")
    meta = read_meta(meta_path, ("domain", "candidates_sha256"))
    if meta.get("domain") not in TEMPLATES:
        raise DataError(meta_path, "domain", f"{meta.get('domain')!r} is not one of {sorted(TEMPLATES)}")
    items = pq.read_table(items_path)
    examples = pq.read_table(examples_path)
    for table, path, columns in (
        (items, items_path, ("item_id", "title")),
        (examples, examples_path, ("split", "user_id", "history", "target", "candidates")),
    ):
        for column in columns:
            if column not in table.column_names:
                raise DataError(path, column, "column missing")
    ids = items.column("item_id").to_numpy()
    if not np.array_equal(ids, np.arange(len(ids))):
        raise DataError(items_path, "item_id", "must be contiguous from 0, in order")
    splits, candidates = examples.column("split").to_pylist(), examples.column("candidates").to_pylist()
    check_candidates(meta, splits, candidates, meta_path, examples_path)
    return meta, items, examples


def _split(examples: pa.Table, split: str) -> pa.Table:
    return examples.filter(pc.equal(examples.column("split"), split))


def _positions(ids: list[int], token_ids: set[int]) -> list[int]:
    return [i for i, t in enumerate(ids) if t in token_ids]


def materialize_eval(
    split_table: pa.Table,
    split: str,
    titles: list[str],
    templates: tuple[str, ...],
    tokenizer,
    tokens: SpecialTokenIds,
    path: Path,
    item_order: str = "title-first",
) -> dict[str, list]:
    """Render + tokenize every (mode, template, row) of an evaluation split; return its columns."""
    histories = split_table.column("history").to_pylist()
    candidates = split_table.column("candidates").to_pylist()
    targets = split_table.column("target").to_pylist()
    users = split_table.column("user_id").to_pylist()
    for r, cands in enumerate(candidates):
        if cands is None or targets[r] not in cands:
            raise DataError(path, "candidates", f"{split} row {r}: candidates missing or without the target")
    columns: dict[str, list] = {
        k: []
        for k in (
            "split",
            "mode",
            "template",
            "row",
            "user_id",
            "history",
            "candidates",
            "target",
            "target_index",
            "prompt",
            "target_text",
            "input_ids",
            "prompt_length",
            "history_positions",
            "candidate_positions",
        )
    }
    for mode in MODES:
        hybrid = mode == "hybrid"
        marks = {tokens.history, tokens.cans} if hybrid else {tokens.ph}
        for t, template in enumerate(templates):
            pairs = zip(histories, candidates, strict=True)
            prompts = [render_prompt(template, titles, h, c, hybrid, item_order) for h, c in pairs]
            answers = [titles[y] for y in targets]
            for r, enc in enumerate(encode(tokenizer, prompts, answers)):
                placed = _positions(enc.input_ids[: enc.prompt_length], marks)
                n_hist = len(histories[r])
                if len(placed) != n_hist + len(candidates[r]):
                    raise DataError(path, "title", f"{split} row {r}: a title contains a placeholder token")
                columns["split"].append(split)
                columns["mode"].append(mode)
                columns["template"].append(t)
                columns["row"].append(r)
                columns["user_id"].append(users[r])
                columns["history"].append(histories[r])
                columns["candidates"].append(candidates[r])
                columns["target"].append(targets[r])
                columns["target_index"].append(candidates[r].index(targets[r]))
                columns["prompt"].append(prompts[r])
                columns["target_text"].append(answers[r])
                columns["input_ids"].append(enc.input_ids)
                columns["prompt_length"].append(enc.prompt_length)
                columns["history_positions"].append(placed[:n_hist])
                columns["candidate_positions"].append(placed[n_hist:])
    return columns


SCHEMA = pa.schema(
    [
        ("split", pa.string()),
        ("mode", pa.string()),
        ("template", pa.int8()),
        ("row", pa.int32()),
        ("user_id", pa.int32()),
        ("history", pa.list_(pa.int32())),
        ("candidates", pa.list_(pa.int32())),
        ("target", pa.int32()),
        ("target_index", pa.int8()),
        ("prompt", pa.string()),
        ("target_text", pa.string()),
        ("input_ids", pa.list_(pa.int32())),
        ("prompt_length", pa.int32()),
        ("history_positions", pa.list_(pa.int32())),
        ("candidate_positions", pa.list_(pa.int32())),
    ]
)


def read_eval_prompts(
    prompts_dir: Path,
    split: str,
    mode: str = "hybrid",
    template: TemplateChoice = "draw",
    seed: int = 0,
    max_rows: int | None = None,
) -> pa.Table:
    """Rows of ``prompts.parquet`` for one evaluation split and mode (text/hybrid), by (row, template).

    ``template``: an index, ``"draw"`` (row r gets ``draw_template(seed, r, n)``) or ``"all"``;
    ``max_rows``: only rows ``0 .. max_rows - 1`` of the split (per template).
    The one reader of materialized evaluation prompts: training's validation and the evaluate stage.
    """
    path = Path(prompts_dir) / "prompts.parquet"
    if not path.is_file():
        raise DataError(path, None, "missing from the prompts artifact")
    table = pq.read_table(path)
    table = table.filter(
        pc.and_(pc.equal(table.column("split"), split), pc.equal(table.column("mode"), mode))
    )
    if max_rows is not None:
        table = table.filter(pc.less(table.column("row"), max_rows))
    n_templates = int(pc.max(table.column("template")).as_py()) + 1 if table.num_rows else 0
    fixed = template_indices(template, max(n_templates, 1))
    templates = table.column("template").to_numpy()
    if fixed is None:
        rows = table.column("row").to_numpy()
        wanted = np.array([draw_template(seed, int(r), n_templates) for r in rows], dtype=templates.dtype)
        table = table.filter(pa.array(templates == wanted))
    else:
        table = table.filter(pa.array(np.isin(templates, fixed)))
    if table.num_rows == 0:
        raise DataError(path, "split", f"no rows for split={split!r}, mode={mode!r}, template={template!r}")
    order = np.lexsort((table.column("template").to_numpy(), table.column("row").to_numpy()))
    return table.take(pa.array(order))


def load_rows(
    prompts_dir: Path,
    split: str,
    prompt_mode: str,
    template: TemplateChoice = "draw",
    max_rows: int | None = None,
    seed: int = 0,
) -> list[EvalRow]:
    """The frozen evaluation rows of one split / prompt kind / template choice, by (row, template)."""
    part = read_eval_prompts(prompts_dir, split, prompt_mode, template, seed, max_rows)
    titles_path = Path(prompts_dir) / "titles.parquet"
    titles = pq.read_table(titles_path).column("title").to_pylist()
    rows = []
    for rec in part.to_pylist():
        cands = tuple(int(c) for c in rec["candidates"])
        rows.append(
            EvalRow(
                row_id=int(rec["row"]),
                user_id=int(rec["user_id"]),
                prompt=rec["prompt"],
                target_id=int(rec["target"]),
                candidate_ids=cands,
                candidate_titles=tuple(titles[c] for c in cands),
                history_ids=tuple(int(h) for h in rec["history"]),
                prompt_ids=tuple(int(t) for t in rec["input_ids"][: rec["prompt_length"]]),
                template=int(rec["template"]),
                target_answer_ids=tuple(int(t) for t in rec["input_ids"][rec["prompt_length"] :]),
            )
        )
    return rows


def run(config: PromptsConfig, inputs: dict[str, Path], out_dir: Path) -> dict:
    """Materialize prompts for ``inputs["dataset"]`` into ``out_dir``; return a small summary."""
    meta, items, examples = read_dataset(Path(inputs["dataset"]))
    tokenizer = load_tokenizer(config.backbone)
    tokens = SpecialTokenIds.of(tokenizer)
    titles = items.column("title").to_pylist()
    templates = TEMPLATES[meta["domain"]]
    examples_path = Path(inputs["dataset"]) / "examples.parquet"
    tables, rows = [], {}
    for split in EVAL_SPLITS:
        part = _split(examples, split)
        if config.max_eval_rows is not None:
            part = part.slice(0, config.max_eval_rows)
        rows[split] = part.num_rows
        columns = materialize_eval(
            part, split, titles, templates, tokenizer, tokens, examples_path, config.item_order
        )
        tables.append(pa.table(columns, schema=SCHEMA))
    pq.write_table(pa.concat_tables(tables), out_dir / "prompts.parquet")
    train = _split(examples, "train")
    rows["train"] = train.num_rows
    train_table = pa.table(
        {
            "row": pa.array(np.arange(train.num_rows, dtype=np.int32)),
            "user_id": train.column("user_id").cast(pa.int32()),
            "history": train.column("history").cast(pa.list_(pa.int32())),
            "target": train.column("target").cast(pa.int32()),
        }
    )
    pq.write_table(train_table, out_dir / "train.parquet")
    pq.write_table(
        pa.table({"item_id": items.column("item_id").cast(pa.int32()), "title": items.column("title")}),
        out_dir / "titles.parquet",
    )
    n_candidates = len(examples.column("candidates").drop_null()[0]) if tables[0].num_rows else 20
    info = {
        "backbone": config.backbone,
        "dataset": meta.get("name"),
        "domain": meta["domain"],
        "seed": meta.get("seed", 0),
        "n_items": len(titles),
        "n_candidates": n_candidates,
        "templates": list(templates),
        "item_order": config.item_order,
        "rows": rows,
        "vocab_size": len(tokenizer),
        "special_tokens": {
            "ph": tokens.ph,
            "history": tokens.history,
            "cans": tokens.cans,
            "item": tokens.item,
        },
    }
    (out_dir / "prompts.json").write_text(json.dumps(info, indent=2))
    return {"rows": rows, "domain": meta["domain"], "backbone": config.backbone}
