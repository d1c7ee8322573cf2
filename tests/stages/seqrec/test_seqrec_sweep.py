"""The validation sweep and the table's per-model settings."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from stages.seqrec.config import PretrainConfig
from stages.seqrec.sweep import config_key, parse_grid, parse_point, run_sweep, set_flags
from stages.seqrec.table import parse_model_settings, parse_setting, run_table

FAST = PretrainConfig(epochs=1, batch_size=32, progress=False, threads=1)


def test_parse_setting_types_the_value_like_the_field() -> None:
    assert parse_setting("dropout=0.3") == ("dropout", 0.3)
    assert parse_setting("batch_size=64") == ("batch_size", 64)
    assert parse_setting("loss=bce1") == ("loss", "bce1")
    for bad in ("dropout", "nope=1", "seed=3", "batch_size=big"):
        with pytest.raises(ValueError, match=bad.split("=")[0]):
            parse_setting(bad)


def test_parse_grid_is_the_product_and_rejects_non_hyperparameters() -> None:
    grid = parse_grid(["lr=1e-3,3e-3", "dropout=0.1,0.3,0.5"])
    assert len(grid) == 6 and grid[0] == {"lr": 0.001, "dropout": 0.1}
    assert grid[-1] == {"lr": 0.003, "dropout": 0.5}
    with pytest.raises(ValueError, match="model"):
        parse_grid(["model=sasrec"])
    assert parse_point("dropout=0.3 lr=3e-3") == {"dropout": 0.3, "lr": 0.003} and parse_point("base") == {}
    settings = parse_model_settings(["sasrec.dropout=0.3", "sasrec.lr=0.003"])
    assert settings == {"sasrec": {"dropout": 0.3, "lr": 0.003}}
    with pytest.raises(ValueError, match="MODEL.FIELD"):
        parse_model_settings(["dropout=0.3"])


def test_config_key_ignores_the_seed_only() -> None:
    assert config_key(FAST) == config_key(PretrainConfig(**{**FAST.as_dict(), "seed": 5}))
    assert config_key(FAST) != config_key(PretrainConfig(**{**FAST.as_dict(), "dropout": 0.3}))


def test_sweep_ranks_on_validation_and_resumes(prepared: Path, tmp_path: Path) -> None:
    grid = parse_grid(["dropout=0.0,0.5"])
    rows = run_sweep(prepared, tmp_path / "work", ("gru4rec", "caser"), grid, seeds=(0, 1), base=FAST,
                     out=tmp_path / "sweep")
    assert len(rows) == 4 and sum(r["chosen"] for r in rows) == 2
    for model in ("gru4rec", "caser"):
        mine = [r for r in rows if r["model"] == model]
        assert mine[0]["chosen"] and mine[0]["val_ndcg@5"] >= mine[1]["val_ndcg@5"]
    assert not any("test" in k for k in rows[0])  # the choice is made without the test split
    runs = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert len(runs) == 8 and all(p.endswith(("-s0", "-s1")) for p in runs)
    assert pq.read_table(tmp_path / "sweep.parquet").num_rows == 4
    assert "✓" in (tmp_path / "sweep.md").read_text() and "on `toy`" in (tmp_path / "sweep.md").read_text()
    flags = set_flags(rows)
    assert len(flags) == 2 and all(f.startswith("--set ") and ".dropout=" in f for f in flags)

    stamp = {p: (p / "metrics.json").stat().st_mtime_ns for p in (tmp_path / "work").iterdir()}
    again = run_sweep(prepared, tmp_path / "work", ("gru4rec", "caser"), grid, (0, 1), FAST, jobs=2)
    assert again == rows
    # reused, not retrained
    assert all((p / "metrics.json").stat().st_mtime_ns == t for p, t in stamp.items())


def test_table_applies_one_models_own_setting(prepared: Path, tmp_path: Path) -> None:
    table = run_table({"toy": prepared}, tmp_path / "work", None, models=("gru4rec", "caser"), seeds=(0,),
                      base=FAST, per_model={"caser": {"dropout": 0.3}})
    assert table.column("setting").to_pylist() == ["", "dropout 0.3"]
    saved = json.loads((tmp_path / "work" / "toy" / "caser-ce-s0" / "config.json").read_text())["config"]
    assert saved["dropout"] == 0.3
    gru = json.loads((tmp_path / "work" / "toy" / "gru4rec-ce-s0" / "config.json").read_text())["config"]
    assert gru["dropout"] == FAST.dropout
