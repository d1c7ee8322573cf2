from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from stages.errors import DataError
from stages.metrics import Estimate
from stages.report.published import PUBLISHED_CSV, canonical_dataset, load_published, published_model
from stages.report.report import ReportConfig, run
from stages.report.seeds import aggregate_seeds, result_rows
from tests.needs import shared


def metrics_dir(
    root: Path, name: str, row: str, mode: str, seed: int, hr1: float, dataset: str = "movielens"
) -> Path:
    d = root / name
    d.mkdir()
    metrics = {"valid_ratio": Estimate(0.9, 0.85, 0.95, 95), "hr@1": Estimate(hr1, hr1 - 0.1, hr1 + 0.1, 95)}
    result_rows(
        metrics, dataset=dataset, row=row, mode=mode, split="test", backbone="tiny-random", seed=seed
    ).write_parquet(d / "metrics.parquet")
    return d


def train_dir(root: Path, name: str, seed: int) -> Path:
    d = root / name
    d.mkdir()
    steps = list(range(1, 21))
    pl.DataFrame(
        {
            "step": steps,
            "epoch": [s // 10 for s in steps],
            "loss": [3.0 / s for s in steps],
            "hybrid": [s / 20 for s in steps],
        }
    ).write_parquet(d / "train_log.parquet")
    (d / "summary.json").write_text(
        json.dumps({"seed": seed, "backbone": "tiny-random", "dataset": "movielens"})
    )
    return d


def test_published_copy_matches_shared_reference_and_maps_names() -> None:
    pub = load_published()
    assert PUBLISHED_CSV.is_file() and set(pub["source"]) == {
        "paper_table2",
        "repo_readme_2024_07",
        "reproduction_report",
    }
    reference = shared("reference", "published_results.csv")  # fails or skips when absent (tests/needs.py)
    assert pl.read_csv(reference).equals(pl.read_csv(PUBLISHED_CSV))
    assert published_model("zero-shot") == "Llama2" and published_model("LLaRA (SASRec)") == "LLaRA(SASRec)"
    assert canonical_dataset("ml-100k") == "movielens" and canonical_dataset("LastFM") == "lastfm"


def test_aggregate_seeds_mean_and_spread() -> None:
    frames = [
        result_rows(
            {"hr@1": Estimate(v, v - 0.1, v + 0.1, 95)},
            dataset="d",
            row="r",
            mode="generation",
            split="test",
            backbone="b",
            seed=s,
        )
        for s, v in enumerate([0.40, 0.44, 0.48])
    ]
    out = aggregate_seeds(frames).row(0, named=True)
    assert out["mean"] == pytest.approx(0.44) and out["seeds"] == 3 and out["seed_list"] == "0,1,2"
    assert out["seed_std"] == pytest.approx(0.04) and (out["seed_min"], out["seed_max"]) == (0.40, 0.48)
    assert out["ci_low"] == pytest.approx(0.34)


def test_report_writes_table_markdown_and_figures(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    inputs = {
        "llara_s0": metrics_dir(src, "a", "LLaRA(SASRec)", "generation", 0, 0.40),
        "llara_s1": metrics_dir(src, "b", "LLaRA(SASRec)", "generation", 1, 0.50),
        "zero": metrics_dir(src, "c", "zero-shot", "generation", 0, 0.05),
        "sasrec": metrics_dir(src, "d", "SASRec", "sr", 0, 0.33),
        "train_s0": train_dir(src, "t0", 0),
        "train_s1": train_dir(src, "t1", 1),
    }
    out = tmp_path / "out"
    summary = run(ReportConfig(title="Test report"), inputs, out)
    for name in ("results.parquet", "report.md", "hr1.png", "loss.png", "hybrid.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    table = pl.read_parquet(out / "results.parquet")
    assert summary["rows"] == table.height == 6  # 3 rows x 2 metrics, the two LLaRA seeds merged
    llara = table.filter((pl.col("row") == "LLaRA(SASRec)") & (pl.col("metric") == "hr@1")).row(0, named=True)
    assert llara["seeds"] == 2 and llara["mean"] == pytest.approx(0.45)
    assert llara["hr1_paper_table2"] == pytest.approx(0.4421) and llara[
        "hr1_repo_readme_2024_07"
    ] == pytest.approx(0.4526)
    zero = table.filter((pl.col("row") == "zero-shot") & (pl.col("metric") == "valid_ratio")).row(
        0, named=True
    )
    assert zero["valid_paper_table2"] == pytest.approx(0.4421)  # the paper's Llama2 row
    md = (out / "report.md").read_text()
    assert "# Test report" in md and "## movielens" in md
    assert "| LLaRA(SASRec) | generation | test | tiny-random | – | 0,1 | 95 |" in md
    assert "0.4421" in md and "0.4526" in md and "0.3444" in md  # published LLaRA / README / SASRec values
    assert "TALLRec (paper 0.3895" in md  # published rows we did not produce are listed too
    assert "arXiv 2312.02445" in md and "ljy0ustc/LLaRA" in md
    assert "![hr1.png](hr1.png)" in md and "seeds: 0, 1" in md


def test_report_accepts_metrics_json_and_rejects_empty_inputs(tmp_path: Path) -> None:
    d = tmp_path / "eval"
    d.mkdir()
    doc = {
        "dataset": "steam",
        "row": "TALLRec",
        "mode": "scoring",
        "split": "val",
        "backbone": "b",
        "seed": 3,
        "metrics": {"hr@1": {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 10}},
    }
    (d / "metrics.json").write_text(json.dumps(doc))
    run(ReportConfig(), {"e": d}, tmp_path / "out")
    table = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert table["hr1_paper_table2"].to_list() == [pytest.approx(0.4637)] and table[
        "seed_list"
    ].to_list() == ["3"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError):
        run(ReportConfig(), {"x": empty}, tmp_path / "out2")


def test_report_names_each_llm_rows_selected_step_and_plots_validation(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    inputs = {}
    for seed, (best, last) in enumerate([(16, 32), (32, 32)]):
        d = metrics_dir(src, f"e{seed}", "LLaRA(SASRec)", "scoring", seed, 0.4)
        labels = {"dataset": "movielens", "row": "LLaRA(SASRec)", "mode": "scoring", "split": "test"}
        note = {
            "selection": {"metric": "scoring_hr1", "best_step": best, "last_step": last},
            "templates": "draw",
        }
        (d / "metrics.json").write_text(
            json.dumps({**labels, "backbone": "tiny-random", "seed": seed, "metrics": {}, **note})
        )
        inputs[f"eval_s{seed}"] = d
        t = train_dir(src, f"t{seed}", seed)
        summary = json.loads((t / "summary.json").read_text())
        history = [{"step": s, "epoch": 0, "value": v} for s, v in ((16, 0.3), (32, 0.2 + 0.2 * seed))]
        summary["selection"] = {
            "metric": "scoring_hr1",
            "best_step": best,
            "last_step": last,
            "history": history,
        }
        (t / "summary.json").write_text(json.dumps(summary))
        inputs[f"train_s{seed}"] = t
    inputs["zero"] = metrics_dir(src, "z", "zero-shot", "scoring", 0, 0.05)
    out = tmp_path / "out"
    run(ReportConfig(), inputs, out)
    md = (out / "report.md").read_text()
    assert (
        "| LLaRA(SASRec) | scoring | test | tiny-random | – | 0,1 | 95 "
        "| 16/32, 32/32 (scoring_hr1) | drawn per row |" in md
    )
    assert "| zero-shot | scoring | test | tiny-random | – | 0 | 95 | – | – |" in md
    assert (out / "validation.png").stat().st_size > 0 and "![validation.png](validation.png)" in md


def test_released_and_conv_rows_get_the_published_sasrec_numbers(tmp_path: Path) -> None:
    from stages.report.config import SR_ROW_NAMES, llara_row

    released, llara_released = SR_ROW_NAMES["sasrec-released"], llara_row("sasrec-released", "curriculum")
    assert (released, llara_released) == ("SASRec (released)", "LLaRA(SASRec, released)")
    assert published_model(released) == "SASRec" and published_model(llara_released) == "LLaRA(SASRec)"
    assert published_model("SASRec (conv)") == "SASRec"
    assert published_model(llara_row("sasrec-conv", "text+id")) == "LLaRA(SASRec)"  # ablation: same base
    assert published_model("LLaRA(GRU4Rec)") == "LLaRA(GRU4Rec)" and published_model("TALLRec") == "TALLRec"
    src = tmp_path / "in"
    src.mkdir()
    inputs = {
        "sr": metrics_dir(src, "a", released, "sr", 0, 0.30, dataset="lastfm"),
        "llara": metrics_dir(src, "b", llara_released, "scoring", 0, 0.45, dataset="lastfm"),
    }
    run(ReportConfig(), inputs, tmp_path / "out")
    table = pl.read_parquet(tmp_path / "out" / "results.parquet").filter(pl.col("metric") == "hr@1")
    by_row = {r["row"]: r for r in table.iter_rows(named=True)}
    assert by_row[released]["hr1_paper_table2"] == pytest.approx(0.2233)  # paper SASRec, LastFM
    assert by_row[released]["hr1_reproduction_report"] == pytest.approx(0.2367)
    assert by_row[llara_released]["hr1_paper_table2"] == pytest.approx(0.4508)  # paper LLaRA(SASRec)
    assert by_row[llara_released]["hr1_repo_readme_2024_07"] == pytest.approx(0.5246)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| SASRec (released) | sr | test |" in md and "0.2233" in md and "0.4508" in md
