"""``stages.progress``: a stage's progress and log lines, in this process and from child processes
(``stages.launch``), each shown once, and the reporter (the Prefect UI's side) fed by rank 0."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stages.launch import Resources, launch
from stages.progress import MARK, Progress, relay, report_table, reporting_to

JOBS = """
import logging

from stages.progress import Progress, report_table


def counts(config, inputs, out_dir):
    with Progress("demo", 4, "step", every=2) as progress:
        for done in range(1, 5):
            progress.update(done, f"step {done} of 4")
    report_table("demo", "history", [{"step": 4, "value": 0.5}])
    logging.getLogger("llara.demo").warning("careful")
    print("a library's own line", flush=True)
    return {}
"""


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def progress(self, stage: str, done: float, total: float, description: str) -> None:
        self.events.append(("progress", stage, done, total))

    def table(self, stage: str, name: str, rows: list[dict[str, Any]]) -> None:
        self.events.append(("table", stage, name, rows))


@pytest.fixture
def jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    (tmp_path / "progress_jobs.py").write_text(JOBS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return importlib.import_module("progress_jobs")


def _messages(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name]


def test_lines_every_n_units_the_end_once_and_a_nested_progress_is_silent(caplog) -> None:
    caplog.set_level(logging.INFO, logger="llara")
    recorder = Recorder()
    with reporting_to(recorder), Progress("demo", 5, every=2) as outer:
        for done in range(1, 6):
            with Progress("demo", 1) as inner:  # e.g. one forward's own rows: not the stage's progress
                inner.update(1, "inner")
            outer.update(done, f"at {done}")
        outer.finish("finished")
    assert _messages(caplog, "llara.demo") == ["at 1", "at 2", "at 4", "at 5"]
    assert recorder.events == [("progress", "demo", d, 5) for d in (1, 2, 3, 4, 5, 5)]


def test_a_child_reports_through_its_parent_once(jobs, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="llara")  # a CLI test before may have left it at --quiet's
    recorder = Recorder()
    with reporting_to(recorder):
        launch(jobs.counts, {}, {}, tmp_path, Resources(cpus=(0,)), logging.getLogger("launcher"))
    assert recorder.events == [("progress", "demo", d, 4) for d in (1, 2, 3, 4)] + [
        ("table", "demo", "history", [{"step": 4, "value": 0.5}])
    ]
    assert _messages(caplog, "llara.demo") == ["step 1 of 4", "step 2 of 4", "step 4 of 4", "careful"]
    assert [r.levelname for r in caplog.records if r.name == "llara.demo"][-1] == "WARNING"
    assert _messages(caplog, "launcher")[-1] == "a library's own line"
    assert MARK not in caplog.text  # no event line shows as it is


def test_the_parents_level_decides_what_a_child_line_shows(jobs, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("llara").setLevel(logging.WARNING)  # llara --quiet
    try:
        launch(jobs.counts, {}, {}, tmp_path, Resources(cpus=(0,)), logging.getLogger("launcher"))
    finally:
        logging.getLogger("llara").setLevel(logging.NOTSET)
    assert _messages(caplog, "llara.demo") == ["careful"]


def test_relay_names_the_rank_of_a_multi_rank_line_and_keeps_foreign_lines(caplog) -> None:
    caplog.set_level(logging.INFO)
    recorder = Recorder()
    line = MARK + '{"log": [20, "llara.finetune", 1, "training on cpu"]}'
    with reporting_to(recorder, label="0a1b2c3d"):  # the artifact being computed, from tasks/
        relay(f"[default1]:{line}", logging.getLogger("launcher"), ranks=2)
        relay("[default0]:" + MARK + '{"progress": ["finetune", 3, 8, "step 2"]}', logging.getLogger("x"), 2)
        relay("[default0]:Traceback (most recent call last):", logging.getLogger("launcher"), ranks=2)
        report_table("finetune", "validation", [])
    assert _messages(caplog, "llara.finetune") == ["[0a1b2c3d rank 1] training on cpu"]
    assert _messages(caplog, "launcher") == ["[default0]:Traceback (most recent call last):"]
    assert recorder.events == [("progress", "finetune", 3, 8), ("table", "finetune", "validation", [])]
