"""The learning curves of the fine-tunes and the rows they are read against.

A fine-tune's ``summary.json`` holds its validation history (``selection.history``: the metric after
each validated step); its ``train_log.parquet`` the tokens of every optimizer step, so each point
also gets the training tokens seen before it. The reference rows are the ones a fine-tune has to
pass: the backbone zero-shot and the sequential recommenders, on validation where the store has
them (a recommender's ``metrics.json`` always does), else on test, labelled so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from stages.metrics import PROBES
from stages.report.config import SR_ROW_NAMES

REFERENCE_MODE = {"scoring_hr1": "scoring", "generation_hr1": "generation"}
"""The evaluation mode whose HR@1 a validation metric is; ``val_loss`` has no reference rows."""


@dataclass(frozen=True)
class Curve:
    """One fine-tune's validation history."""

    label: str
    """Legend entry: the run's role in the report and its selected step."""
    steps: list[int]
    """Optimizer steps done at each validation."""
    tokens: list[int] | None
    """Training tokens seen before each validation (None: the log has no token counts)."""
    values: list[float]
    """The validation metric at each point."""
    best_step: int | None
    """The step kept on validation."""
    probes: dict[str, list[float]] = field(default_factory=dict)
    """The learning probes recorded at every point (``val_hr1``, ``fit_nll``, ...; SPEC §4), where
    the run recorded all of them."""


@dataclass(frozen=True)
class Reference:
    """A row drawn as a horizontal line."""

    label: str
    value: float


def learning_curves(summaries: dict[str, dict], logs: dict[str, pl.DataFrame]) -> tuple[list[Curve], str]:
    """Each fine-tune role's validation curve (with tokens from its log) and the metric's name."""
    curves, metrics = [], set()
    for role, summary in summaries.items():
        selection = summary.get("selection")
        if not isinstance(selection, dict) or not selection.get("history"):
            continue
        history = selection["history"]
        steps = [int(h["step"]) for h in history]
        log = logs.get(role)
        tokens = None
        if log is not None and {"step", "tokens"} <= set(log.columns):
            # a validation at step s follows steps 0 .. s-1 (``step`` in the log is 0-based)
            done = log.sort("step").select("step", pl.col("tokens").cum_sum().alias("seen"))
            seen = dict(zip(done["step"].to_list(), done["seen"].to_list(), strict=True))
            tokens = [int(seen.get(s - 1, 0)) for s in steps]
        probes = {k: [float(h[k]) for h in history] for k in PROBES if all(k in h for h in history)}
        curves.append(
            Curve(
                f"{role} (kept step {selection.get('best_step')})",
                steps,
                tokens,
                [float(h["value"]) for h in history],
                selection.get("best_step"),
                probes,
            )
        )
        metrics.add(str(selection.get("metric")))
    return curves, ", ".join(sorted(metrics))


def _json(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _zero_shot(path: Path, mode: str) -> dict[str, float]:
    """HR@1 by split of the zero-shot rows in ``mode`` of one result directory."""
    doc = _json(path / "metrics.json")
    if doc is not None and "metrics" in doc:
        if doc.get("row") == "zero-shot" and doc.get("mode") == mode and "hr@1" in doc["metrics"]:
            return {str(doc.get("split")): float(doc["metrics"]["hr@1"]["mean"])}
        return {}
    if not (path / "metrics.parquet").is_file():
        return {}
    rows = pl.read_parquet(path / "metrics.parquet")
    if not {"row", "mode", "metric", "split", "mean"} <= set(rows.columns):
        return {}
    wanted = (pl.col("row") == "zero-shot") & (pl.col("mode") == mode) & (pl.col("metric") == "hr@1")
    rows = rows.filter(wanted)
    return {str(r["split"]): float(r["mean"]) for r in rows.iter_rows(named=True)}


def reference_lines(inputs: dict[str, Path], metric: str) -> list[Reference]:
    """Zero-shot and recommender HR@1 of the report's inputs, for a curve of ``metric``.

    A recommender (``metrics.json`` with ``model`` and ``val``) gives its validation HR@1. A
    zero-shot evaluation gives its HR@1 in the metric's mode, the validation run where there is
    one, else the test run (labelled ``test``: other rows than the curve's).
    """
    mode = REFERENCE_MODE.get(metric)
    if mode is None:
        return []
    lines: list[Reference] = []
    zero_shot: dict[str, float] = {}
    for path in (Path(p) for p in inputs.values()):
        if not path.is_dir():
            continue
        doc = _json(path / "metrics.json")
        if doc is not None and "model" in doc and isinstance(doc.get("val"), dict) and "hr@1" in doc["val"]:
            name = SR_ROW_NAMES.get(doc["model"], doc["model"])
            lines.append(Reference(f"{name} (val)", float(doc["val"]["hr@1"]["mean"])))
        else:
            zero_shot.update(_zero_shot(path, mode))
    split = "val" if "val" in zero_shot else "test"
    if split in zero_shot:
        lines.append(Reference(f"zero-shot ({split})", zero_shot[split]))
    return sorted(lines, key=lambda r: r.label)
