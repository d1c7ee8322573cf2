"""The `llara` command line: help texts, prepare's output contract, and bad input handling."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from artifacts import ArtifactStore
from flows.cli import main
from tests.needs import shared
from tests.stages.preprocess.bad_inputs import CASES

REPO = Path(__file__).resolve().parents[2]


def llara(*args: str, store: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLARA_STORE": str(store), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", [[], ["prepare"], ["store"], ["store", "ls"], ["store", "gc"]])
def test_every_command_has_help(command, tmp_path):
    result = llara(*command, "--help", store=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_prepare_prints_the_artifact_path_last_and_reuses_it(tmp_path):
    first = llara("prepare", "bundled:movielens-100k", store=tmp_path)
    assert first.returncode == 0, first.stderr
    path = Path(first.stdout.strip().splitlines()[-1])
    assert (path / "examples.parquet").is_file() and (path / "manifest.json").is_file()
    assert "computing prepare" in first.stderr
    second = llara("prepare", "bundled:movielens-100k", store=tmp_path)
    assert second.stdout.strip().splitlines()[-1] == str(path)
    assert "cache hit: prepare" in second.stderr and "computing" not in second.stderr
    listing = llara("store", "ls", store=tmp_path)
    assert path.name in listing.stdout and "prepare" in listing.stdout


@pytest.mark.parametrize(("case_id", "build", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_file_and_field_and_publishes_nothing(
    case_id, build, field, tmp_path, capsys
):
    source, allow_pickle = build(tmp_path / "data")
    store = tmp_path / "store"
    argv = ["--quiet", "prepare", source, "--store", str(store)] + (
        ["--allow-pickle"] if allow_pickle else []
    )
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and field in lines[0] and "Traceback" not in lines[0]
    assert str(tmp_path / "data") in lines[0] or source in lines[0]
    assert list(ArtifactStore(store)) == []


def test_traceback_only_with_debug(tmp_path):
    missing = tmp_path / "nowhere"
    plain = llara("prepare", f"ml100k:{missing}", store=tmp_path / "s")
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr and str(missing) in plain.stderr
    debug = llara("--debug", "prepare", f"ml100k:{missing}", store=tmp_path / "s")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_pretrain_takes_settings_and_names_a_bad_one(tmp_path):
    data = llara("prepare", "bundled:movielens-100k", store=tmp_path).stdout.strip().splitlines()[-1]
    pretrain = ("pretrain", "--data", data, "--model", "gru4rec")
    bad = llara(*pretrain, "--set", "dropout=high", store=tmp_path)
    assert bad.returncode == 2 and "dropout" in bad.stderr
    other = llara(*pretrain, "--set", "sasrec.dropout=0.7", store=tmp_path)
    assert other.returncode == 2 and "sasrec" in other.stderr
    ok = llara(*pretrain, "--epochs", "1", "--set", "gru4rec.dropout=0.3", "--set", "lr=3e-3", store=tmp_path)
    assert ok.returncode == 0, ok.stderr
    model_dir = Path(ok.stderr.split("model artifact: ")[1].split()[0])
    config = json.loads((model_dir / "config.json").read_text())["config"]
    assert (config["dropout"], config["lr"], config["epochs"]) == (0.3, 0.003, 1)
    assert "no settings chosen for domain 'movie'" in ok.stderr and "dropout=0.3" in ok.stderr
    assert Path(ok.stdout.strip().splitlines()[-1], "item_embeddings.safetensors").is_file()


def test_prefect_telemetry_is_off_for_the_temporary_server(monkeypatch):
    # `llara run` without a server makes Prefect start a temporary one, which inherits this
    # environment; with analytics on it logs an ERROR line for every failed telemetry call offline
    monkeypatch.delenv("PREFECT_SERVER_ANALYTICS_ENABLED", raising=False)
    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", raising=False)
    with pytest.raises(SystemExit):
        main(["store", "--help"])
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    # and it may take longer than Prefect's 20 s to start on a busy machine
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "120"


def test_bad_input_inside_a_flow_run_has_no_traceback_without_debug(tmp_path):
    # `llara stage` runs a Prefect flow, whose engine logs the exception with its traceback
    missing = tmp_path / "nowhere"
    plain = llara("stage", "prepare", "--source", f"ml100k:{missing}", store=tmp_path / "s")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr, plain.stderr[-2000:]
    assert f"error: {missing}" in plain.stderr
    assert list(ArtifactStore(tmp_path / "s")) == []


def test_pretrain_uses_the_settings_chosen_for_the_domain(tmp_path):
    release = shared("data", "llara-release", "lastfm")
    data = llara("prepare", f"llara-release:{release}", "--allow-pickle", store=tmp_path)
    data = data.stdout.strip().splitlines()[-1]
    quick = ("pretrain", "--data", data, "--model", "sasrec", "--epochs", "1", "--set", "min_epochs=1")
    for profile, expected in (("chosen", (0.003, 0.7, 1e-4)), ("defaults", (0.001, 0.1, 1e-6))):
        run = llara(*quick, "--profile", profile, store=tmp_path)
        assert run.returncode == 0, run.stderr
        assert ("chosen on validation for domain 'artist'" in run.stderr) == (profile == "chosen")
        model_dir = Path(run.stderr.split("model artifact: ")[1].split()[0])
        config = json.loads((model_dir / "config.json").read_text())["config"]
        assert (config["lr"], config["dropout"], config["weight_decay"], config["epochs"]) == (*expected, 1)
