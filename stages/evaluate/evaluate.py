"""Stage ``evaluate``: an LLM (zero-shot, TALLRec or LLaRA) on the frozen validation or test prompts.

Inputs: ``{"prompts": <prompts artifact>}`` plus, for a fine-tuned row, ``"model"`` (a ``finetune``
artifact: adapter, projector, token rows) and ``"embeddings"`` (the item-embedding artifact the model
was trained with). Without ``"model"`` the plain backbone is evaluated zero-shot; with
``config.endpoint`` set, an OpenAI-compatible server is asked instead and no model is loaded.

Outputs:
- ``predictions.parquet``: one row per prompt: ``row_id``, ``user_id``, ``split``, ``prompt_mode``,
  ``template``, ``candidates``, ``target``, ``target_index``, ``output`` (generated first line; null
  in scoring mode), ``valid``, ``correct``, ``predicted`` (parsed / argmax item id, null when
  invalid), ``scores`` / ``mean_scores`` (candidate log-likelihoods, scoring mode) and ``rank`` (0-based
  rank of the target, scoring mode).
- ``metrics.parquet``: long-form result rows (``stages.evaluate.aggregate``); ``metrics.json``: the
  same as a dict with the run's labels.

``evaluate_rows`` is the compute boundary (model, tokenizer, rows, embed_fn) that flows can call
directly with any model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from stages.errors import DataError
from stages.evaluate.aggregate import estimates_dict, result_table, template_mean_metrics
from stages.evaluate.config import EvaluateConfig
from stages.evaluate.endpoint import EndpointConfig, evaluate_endpoint
from stages.evaluate.pairing import check_pairing
from stages.llm.amount import training_amount
from stages.llm.generation import GenerationConfigEval, GenerationResult, evaluate_generation
from stages.llm.prompts import load_rows
from stages.llm.rows import EmbedFn, EvalRow, hybrid_embed_fn
from stages.llm.scoring import ScoringConfig, evaluate_scoring
from stages.precision import precision_to_run
from stages.process import available_cores

NAME = "evaluate"


@dataclass(frozen=True)
class EvalOutput:
    """What one evaluation produced: per-row predictions and summary metrics."""

    predictions: pa.Table
    metrics: dict


def scoring_config(config: EvaluateConfig) -> ScoringConfig:
    """How the scoring mode of ``config`` scores candidates."""
    return ScoringConfig(
        method=config.scoring_method,
        max_tokens_per_forward=config.max_tokens_per_forward,
        prompt_batch_size=max(1, config.batch_size // 2),
        continuation_batch_size=config.continuation_batch_size,
    )


def evaluate_rows(
    model, tokenizer, rows: Sequence[EvalRow], embed_fn: EmbedFn | None, config: EvaluateConfig
) -> EvalOutput:
    """Run generation or scoring on ``rows`` with any causal LM; return predictions and metrics."""
    base = _base_columns(rows)
    if config.mode == "generation":
        gen_config = GenerationConfigEval(
            batch_size=config.batch_size, max_new_tokens=config.max_new_tokens, rule=config.rule
        )
        result = evaluate_generation(model, tokenizer, rows, embed_fn, gen_config, config.seed)
        return EvalOutput(_generation_table(base, result), result.metrics)
    if config.mode == "scoring":
        scored = evaluate_scoring(model, tokenizer, rows, embed_fn, scoring_config(config), config.seed)
        table = dict(base)
        table.update(
            output=[None] * len(rows),
            valid=[True] * len(rows),
            correct=(scored.rank == 0).tolist(),
            predicted=scored.predicted.astype(np.int64).tolist(),
            scores=scored.scores.astype(np.float32).tolist(),
            mean_scores=scored.mean_scores.astype(np.float32).tolist(),
            rank=scored.rank.astype(np.int64).tolist(),
        )
        return EvalOutput(pa.table(table), scored.metrics)
    raise ValueError(f"unknown evaluation mode {config.mode!r}")


def _generation_table(base: dict, result: GenerationResult) -> pa.Table:
    table = dict(base)
    n = len(result.outputs)
    table.update(
        output=result.outputs,
        valid=[m.valid for m in result.matches],
        correct=[m.correct for m in result.matches],
        predicted=pa.array([m.item_id for m in result.matches], type=pa.int64()),
        scores=pa.array([None] * n, type=pa.list_(pa.float32())),
        mean_scores=pa.array([None] * n, type=pa.list_(pa.float32())),
        rank=pa.array([None] * n, type=pa.int64()),
    )
    return pa.table(table)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _precision(config: EvaluateConfig) -> str:
    return precision_to_run(config.precision, _device(config.device).type)


def compute_context(config: EvaluateConfig) -> AbstractContextManager:
    """Where the model of ``_load`` runs: under bf16 autocast when the run's precision is bf16."""
    from stages.llm.mixed_precision import autocast

    return autocast(_device(config.device), _precision(config))


def _load(config: EvaluateConfig, inputs: dict[str, Path], prompt_mode: str):
    """(model, tokenizer, embed_fn) for the run: fine-tuned LLaRA/TALLRec model or the bare backbone.

    In ``bf16`` the linear weights are stored in bf16 and the caller runs the model within
    ``compute_context`` (``stages.llm.mixed_precision``), as fine-tuning and its validation do.
    """
    from stages.llm.backbone import load_backbone
    from stages.llm.inputs import load_item_embeddings, projector_input_dim, read_prompts_info
    from stages.llm.mixed_precision import store_frozen_linears_in_bf16
    from stages.llm.model import load_trained

    device = _device(config.device)
    backbone = load_backbone(config.backbone)
    n_items = read_prompts_info(inputs["prompts"], vocab_size=len(backbone.tokenizer))["n_items"]
    if device.type == "cpu":
        torch.set_num_threads(config.threads or available_cores())
    if "model" not in inputs or inputs["model"] is None:
        model, embed = backbone.model.to(device).eval(), None
    else:
        emb_path = Path(inputs["embeddings"]) / "item_embeddings.safetensors"
        if not emb_path.is_file():
            raise DataError(emb_path, None, "missing: a fine-tuned model needs its item-embedding artifact")
        items = load_item_embeddings(emb_path.parent, n_items, projector_input_dim(inputs["model"]))
        llara = load_trained(backbone, items, Path(inputs["model"])).to(device).eval()
        model = llara.llm
        embed = hybrid_embed_fn(llara) if prompt_mode == "hybrid" else None
    if _precision(config) == "bf16":  # the adapters are frozen here too: all of them go to bf16
        store_frozen_linears_in_bf16(model)
    return model, backbone.tokenizer, embed


def finetune_config(model_dir: Path) -> dict:
    """The finetune run's config: ``summary.json`` keys, overlaid by the artifact manifest's ``config``."""
    found: dict = {}
    for name, key in (("summary.json", None), ("manifest.json", "config")):
        path = Path(model_dir) / name
        if path.is_file():
            try:
                doc = json.loads(path.read_text())
            except json.JSONDecodeError as e:
                raise DataError(path, None, f"not valid JSON ({e})") from e
            found.update((doc.get(key) if key else doc) or {})
    # The artifact store nests the stage config one level down: {"config": {"config": {...}}}.
    if isinstance(found.get("config"), dict):
        found = {**found, **found["config"]}
    if "schedule" not in found:  # decides text or hybrid prompts: never guess it
        raise DataError(Path(model_dir) / "summary.json", "schedule", "missing (and no manifest gives it)")
    return found


def trained_selection(model_dir: Path) -> dict | None:
    """Which step of the fine-tune the evaluated weights are (``summary.json``'s selection, no history)."""
    selection = finetune_config(model_dir).get("selection")
    if not isinstance(selection, dict):
        return None
    return {k: selection.get(k) for k in ("metric", "best_step", "best_value", "last_step")}


def _prompt_mode(config: EvaluateConfig, inputs: dict[str, Path]) -> str:
    """Explicit, else hybrid for a model trained with hybrid batches, text for TALLRec / zero-shot."""
    if config.prompt_mode != "auto":
        return config.prompt_mode
    model_dir = inputs.get("model")
    if model_dir is None or config.endpoint:
        return "text"
    return "text" if finetune_config(Path(model_dir)).get("schedule") == "text" else "hybrid"


def _row_name(config: EvaluateConfig, inputs: dict[str, Path], prompt_mode: str) -> str:
    if config.row:
        return config.row
    if config.endpoint:
        return f"zero-shot ({config.endpoint_model or 'endpoint'})"
    if inputs.get("model") is None:
        return "zero-shot"
    return "LLaRA" if prompt_mode == "hybrid" else "TALLRec"


def _evaluate_local(
    config: EvaluateConfig, inputs: dict[str, Path], prompt_mode: str, groups: list[list[EvalRow]]
) -> list[EvalOutput]:
    model, tokenizer, embed = _load(config, inputs, prompt_mode)
    with compute_context(config):
        return [evaluate_rows(model, tokenizer, rows, embed, config) for rows in groups]


def _evaluate_endpoint(config: EvaluateConfig, groups: list[list[EvalRow]]) -> list[EvalOutput]:
    ep = EndpointConfig(
        url=config.endpoint or "", model=config.endpoint_model, max_tokens=config.max_new_tokens
    )
    outputs = []
    for rows in groups:
        result = evaluate_endpoint(rows, ep, config.rule, config.seed)
        outputs.append(EvalOutput(_generation_table(_base_columns(rows), result), result.metrics))
    return outputs


def _base_columns(rows: Sequence[EvalRow]) -> dict[str, list]:
    return {
        "row_id": [r.row_id for r in rows],
        "user_id": [r.user_id for r in rows],
        "candidates": [list(r.candidate_ids) for r in rows],
        "target": [r.target_id for r in rows],
        "target_index": [r.target_index for r in rows],
    }


def run(
    config: EvaluateConfig, inputs: dict[str, Path], out_dir: Path, evaluate_groups: Callable | None = None
) -> dict:
    """Evaluate on ``inputs["prompts"]``; write predictions and metrics into ``out_dir``.

    ``evaluate_groups`` replaces ``_evaluate_local`` (``stages.evaluate.shard``: on several processes).
    """
    from stages.llm.inputs import read_prompts_info  # stages.llm loads transformers: only when run

    prompts_dir = Path(inputs["prompts"])
    info = read_prompts_info(prompts_dir, backbone=None if config.endpoint else config.backbone)
    if inputs.get("model") is not None:
        check_pairing(prompts_dir, Path(inputs["model"]), inputs.get("embeddings"))
    prompt_mode = _prompt_mode(config, inputs)
    rows = load_rows(prompts_dir, config.split, prompt_mode, config.template, config.max_rows, config.seed)
    templates = sorted({r.template for r in rows})
    per_template = config.template == "all"
    groups = [[r for r in rows if r.template == t] for t in templates] if per_template else [rows]
    if config.endpoint:
        outputs = _evaluate_endpoint(config, groups)
        mode, backbone = "endpoint", config.endpoint_model or "endpoint"
    else:
        outputs = (evaluate_groups or _evaluate_local)(config, inputs, prompt_mode, groups)
        mode, backbone = config.mode, config.backbone
    predictions = pa.concat_tables([o.predictions for o in outputs])
    n = predictions.num_rows
    ordered = [r for group in groups for r in group]
    predictions = predictions.append_column("split", pa.array([config.split] * n))
    predictions = predictions.append_column("prompt_mode", pa.array([prompt_mode] * n))
    predictions = predictions.append_column(
        "template", pa.array([r.template for r in ordered], type=pa.int8())
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(predictions, out_dir / "predictions.parquet")
    row = _row_name(config, inputs, prompt_mode)
    dataset = str(info.get("dataset") or "unknown")
    labels = dict(dataset=dataset, split=config.split, backbone=backbone, seed=config.seed)
    if per_template:
        metrics = template_mean_metrics(predictions, mode, config.seed)
        by_template = {t: o.metrics for t, o in zip(templates, outputs, strict=True)}
        tables = [result_table(metrics, row=row, mode=mode, **labels)]
        tables += [
            result_table(m, row=f"{row} [template {t}]", mode=mode, **labels) for t, m in by_template.items()
        ]
        result = pa.concat_tables(tables)
    else:
        metrics, by_template = outputs[0].metrics, {}
        result = result_table(metrics, row=row, mode=mode, **labels)
    pq.write_table(result, out_dir / "metrics.parquet")
    summary = {
        **labels,
        "row": row,
        "mode": mode,
        "prompt_mode": prompt_mode,
        "templates": "all" if per_template else ("draw" if config.template == "draw" else templates),
        "rows": n,
        "precision": None if config.endpoint else _precision(config),
        "metrics": estimates_dict(metrics),
    }
    if by_template:
        summary["metrics_by_template"] = {str(t): estimates_dict(m) for t, m in by_template.items()}
    if inputs.get("model") is not None:
        summary["selection"] = trained_selection(Path(inputs["model"]))
        summary["training"] = training_amount(finetune_config(Path(inputs["model"])))
    (out_dir / "metrics.json").write_text(json.dumps({**summary, "config": asdict(config)}, indent=2))
    return summary
