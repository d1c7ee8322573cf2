"""``reproduce`` with a released-format SASRec checkpoint: its baseline row and its LLaRA row; and
every artifact of the run listed by ``llara store ls`` under a name ``llara stage`` takes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.flows.test_light_imports import HEAVY_LIBRARIES
from tests.flows.test_server import tiny_movielens
from tests.stages.seqrec.test_seqrec_import import SASRec


@pytest.mark.slow
def test_reproduce_with_a_released_checkpoint(prefect_harness, tmp_path: Path) -> None:
    from typer.main import get_command
    from typer.testing import CliRunner

    from flows.cli import app
    from flows.reproduce import reproduce_flow

    source = tiny_movielens(tmp_path / "raw")  # 80 movies, raw ids 1..80 = release ids + 1
    torch.manual_seed(0)
    torch.save(SASRec(80), tmp_path / "movielens.pt")  # a whole module, as the authors saved theirs
    out = reproduce_flow(
        source=source, allow_pickle=True, profile="smoke", sr_baselines=["morec"], llara_sr_models=[],
        sr_checkpoints={"sasrec": str(tmp_path / "movielens.pt")}, zero_shot=False, store=str(tmp_path / "s"),
    )
    assert "SASRec (released)" in out["results"]
    assert "LLaRA(SASRec, released) seed=0 scoring" in out["results"]
    report = Path(out["report_path"]).read_text()
    assert "| SASRec (released) |" in report and "| LLaRA(SASRec, released) |" in report

    # morec adds text-embeddings and pretrain: the run writes an artifact of every stage
    name = next(p for p in get_command(app).commands["stage"].params if p.name == "name")
    stage_names = {choice.value for choice in name.type_descriptor.annotation}
    listing = CliRunner().invoke(app, ["store", "ls", "--store", str(tmp_path / "s")]).output
    rows = [line.split() for line in listing.splitlines()[1:]]
    assert {row[1] for row in rows} == stage_names, listing
    assert "old stage name" not in listing and "unknown stage" not in listing

    # A second run needs no stage: the flow's own code walks the DAG in the store's cached-only
    # mode and returns the same result without a Prefect run; with one artifact gone it declines
    # (None, so the CLI runs the flow) and writes nothing.
    import shutil

    from flows.reproduce import reproduce_cached

    parameters = dict(
        source=source, allow_pickle=True, profile="smoke", sr_baselines=["morec"], llara_sr_models=[],
        sr_checkpoints={"sasrec": str(tmp_path / "movielens.pt")}, zero_shot=False, store=str(tmp_path / "s"),
    )
    listed = lambda: sorted(p.name for p in (tmp_path / "s" / "objects").iterdir())  # noqa: E731
    objects = listed()
    assert reproduce_cached(**parameters) == out
    # ... and, in a fresh process as `llara run` is, without loading what the stages compute with
    program = (
        "import json, sys; from flows.reproduce import reproduce_cached; "
        f"out = reproduce_cached(**json.loads({json.dumps(parameters)!r})); "
        "print(json.dumps([out is not None, sorted(m for m in HEAVY if m in sys.modules)]))"
    ).replace("HEAVY", repr(HEAVY_LIBRARIES))
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == [True, []], done.stderr[-2000:]
    assert reproduce_cached(**parameters, refresh=["report"]) is None  # a refresh always runs the flow
    shutil.rmtree(Path(out["report_path"]).parent)
    assert reproduce_cached(**parameters) is None
    assert listed() == [o for o in objects if o != out["report"]]
    assert not any((tmp_path / "s" / "tmp").glob("*"))
