"""``python -m stages.report.probes``: several fine-tunes' probes in one figure, evaluations as lines."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.report.probes import main
from tests.stages.llm.test_llm_study import _run_dir


def test_the_figure_draws_the_runs_with_an_evaluation_as_lines(tmp_path: Path, capsys) -> None:
    a, b = _run_dir(tmp_path / "a", 0.5), _run_dir(tmp_path / "b", 0.9)
    path = tmp_path / "zs.parquet"
    pq.write_table(pa.table({"split": ["val"], "scores": [[1.0, 0.0]], "target_index": [0]}), path)
    figure = tmp_path / "probes.png"
    main([f"first={a}", f"second={b}", f"zero-shot={path}", "--out", str(figure)])
    assert capsys.readouterr().out.strip().endswith("probes.png")
    assert figure.is_file() and figure.stat().st_size > 10_000


def test_without_a_fine_tune_it_says_so(tmp_path: Path) -> None:
    path = tmp_path / "zs.parquet"
    pq.write_table(pa.table({"split": ["val"], "scores": [[1.0, 0.0]], "target_index": [0]}), path)
    with pytest.raises(SystemExit):
        main([str(path), "--out", str(tmp_path / "x.png")])
