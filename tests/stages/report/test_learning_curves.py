"""The report's learning-curve figure: validation HR@1 against steps and tokens, reference rows as lines."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl
import pytest

from stages.metrics import Estimate
from stages.report.learning import Reference, learning_curves, reference_lines
from stages.report.plots import learning_figure
from stages.report.report import ReportConfig, run
from stages.report.seeds import result_rows


def _finetune(root: Path, name: str, history: list[tuple[int, float]], best: int) -> Path:
    """A finetune artifact: 8 logged steps of 100, 110, ... tokens and a validation history."""
    d = root / name
    d.mkdir(parents=True)
    pl.DataFrame(
        {"step": list(range(8)), "epoch": [0] * 8, "loss": [1.0] * 8, "hybrid": [1.0] * 8,
         "tokens": [100 + 10 * s for s in range(8)]}
    ).write_parquet(d / "train_log.parquet")
    selection = {"metric": "scoring_hr1", "best_step": best, "last_step": 8,
                 "history": [{"step": s, "epoch": 0, "value": v} for s, v in history]}
    summary = {"seed": 0, "backbone": "tiny-random", "dataset": "lastfm", "selection": selection}
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def _recommender(root: Path, val: float, test: float) -> Path:
    d = root / "sasrec"
    d.mkdir(parents=True)
    hr = lambda v: {"hr@1": {"mean": v, "ci_low": v - 0.1, "ci_high": v + 0.1, "n": 122}}  # noqa: E731
    doc = {"model": "sasrec", "loss": "ce", "dataset": "lastfm", "seed": 0, "val": hr(val), "test": hr(test)}
    (d / "metrics.json").write_text(json.dumps(doc))
    return d


def _zero_shot(root: Path, split: str, hr1: float) -> Path:
    d = root / f"zero-{split}"
    d.mkdir(parents=True)
    metrics = {"hr@1": Estimate(hr1, hr1 - 0.05, hr1 + 0.05, 122)}
    rows = result_rows(metrics, dataset="lastfm", row="zero-shot", mode="scoring", split=split,
                       backbone="tiny-random", seed=0)
    rows.write_parquet(d / "metrics.parquet")
    return d


def test_each_point_gets_the_tokens_trained_before_it(tmp_path: Path) -> None:
    d = _finetune(tmp_path, "llara", [(4, 0.1), (8, 0.3)], best=8)
    logs = {"llara": pl.read_parquet(d / "train_log.parquet")}
    curves, metric = learning_curves({"llara": json.loads((d / "summary.json").read_text())}, logs)
    assert metric == "scoring_hr1" and len(curves) == 1
    curve = curves[0]
    # validation after 4 steps follows steps 0-3: 100 + 110 + 120 + 130 tokens
    assert curve.steps == [4, 8] and curve.tokens == [460, 460 + 140 + 150 + 160 + 170]
    assert curve.values == [0.1, 0.3] and curve.best_step == 8 and "kept step 8" in curve.label


def test_references_prefer_validation_and_label_the_split(tmp_path: Path) -> None:
    sr = _recommender(tmp_path, val=0.38, test=0.41)
    test_only = {"sr": sr, "zero": _zero_shot(tmp_path, "test", 0.09)}
    assert reference_lines(test_only, "scoring_hr1") == [
        Reference("SASRec (val)", 0.38),
        Reference("zero-shot (test)", 0.09),
    ]
    both = {**test_only, "zero-val": _zero_shot(tmp_path, "val", 0.06)}
    assert Reference("zero-shot (val)", 0.06) in reference_lines(both, "scoring_hr1")
    assert reference_lines(both, "generation_hr1") == [Reference("SASRec (val)", 0.38)]
    assert reference_lines(both, "val_loss") == []


def test_two_equal_points_show_markers_in_a_range_that_holds_the_references(tmp_path: Path) -> None:
    """Issue 27 item 4: two points at 0.0625 drew a marker-less line on a y axis of 0.0625 +- 0.003."""
    d = _finetune(tmp_path, "llara", [(4, 0.0625), (8, 0.0625)], best=4)
    logs = {"llara": pl.read_parquet(d / "train_log.parquet")}
    curves, metric = learning_curves({"llara": json.loads((d / "summary.json").read_text())}, logs)
    references = [Reference("SASRec (val)", 0.41), Reference("zero-shot (val)", 0.057)]
    fig = learning_figure(curves, references, metric, {"dataset": "lastfm"})
    try:
        by_steps, by_tokens = fig.axes[:2]
        assert (by_steps.get_xlabel(), by_tokens.get_xlabel()) == ("optimizer step", "training tokens")
        for ax in (by_steps, by_tokens):
            curve_lines = [line for line in ax.get_lines() if line.get_label().startswith("llara")]
            assert curve_lines and all(line.get_marker() not in (None, "", "None") for line in curve_lines)
            assert len(curve_lines[0].get_xdata()) == 2
            low, high = ax.get_ylim()
            assert low == 0.0 and high >= 0.41 * 1.1  # every reference line and point, with a margin
            levels = {round(float(line.get_ydata()[0]), 4) for line in ax.get_lines()}
            assert {0.41, 0.057} <= levels
        assert list(by_tokens.get_lines()[0].get_xdata()) == [460, 1080]
    finally:
        plt.close(fig)


def test_report_draws_the_learning_curves_with_reference_rows(tmp_path: Path) -> None:
    src = tmp_path / "in"
    inputs = {
        "LLaRA(SASRec) seed=0 train": _finetune(src, "llara", [(4, 0.1), (8, 0.2)], best=8),
        "TALLRec seed=0 train": _finetune(src, "tallrec", [(4, 0.05), (8, 0.05)], best=4),
        "SASRec seed=0": _recommender(src, val=0.38, test=0.41),
        "zero-shot scoring": _zero_shot(src, "test", 0.09),
    }
    out = tmp_path / "out"
    summary = run(ReportConfig(), inputs, out)
    assert "validation.png" in summary["figures"]
    assert (out / "validation.png").stat().st_size > 0
    assert "![validation.png](validation.png)" in (out / "report.md").read_text()


@pytest.mark.parametrize("metric", ["val_loss"])
def test_a_loss_curve_gets_a_range_around_its_points(metric: str) -> None:
    from stages.report.learning import Curve

    curve = Curve("run", [1, 2], None, [2.5, 2.4], 2)
    fig = learning_figure([curve], [], metric, {})
    try:
        low, high = fig.axes[0].get_ylim()
        assert low < 2.4 and high > 2.5 and low > 0.0
    finally:
        plt.close(fig)
