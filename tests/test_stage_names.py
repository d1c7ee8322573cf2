"""Every stage has one name, the registry's, in the CLI, the deployments, the flows, the Prefect
tasks, its module's ``NAME`` (the artifact's ``stage``) and the module's file name."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.tasks import Task
from typer.main import get_command

from stages.registry import NAMES, OLD_NAMES, STAGES, module_file, stage

REPO = Path(__file__).resolve().parents[1]
# Commands that run no one stage: the pipeline, one stage by name, the store and the server.
NOT_STAGES = {"run", "stage", "store", "serve"}


def _cli():
    from flows.cli import app

    return get_command(app)


def test_the_names_are_unique_and_the_old_ones_are_gone() -> None:
    assert len(set(NAMES)) == len(NAMES)
    assert not set(OLD_NAMES) & set(NAMES) and set(OLD_NAMES.values()) <= set(NAMES)
    assert all(read in NAMES for s in STAGES for read in s.reads)
    with pytest.raises(KeyError, match="now called 'prompts'"):
        stage("materialize-prompts")


@pytest.mark.parametrize("s", STAGES, ids=NAMES)
def test_the_module_is_named_like_the_stage_and_its_name_is_the_artifacts(s) -> None:
    module = importlib.import_module(s.module)
    assert s.name == module.NAME  # what run_stage writes into the artifact's manifest and id
    assert s.module.rsplit(".", 1)[-1] == s.name.replace("-", "_")
    assert Path(module.__file__).resolve() == (REPO / module_file(s)).resolve()
    assert list(inspect.signature(module.run).parameters)[:3] == ["config", "inputs", "out_dir"]


def test_llara_stage_offers_exactly_the_registry_names() -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    stage_command = _cli().commands["stage"]
    name = next(p for p in stage_command.params if p.name == "name")
    assert tuple(choice.value for choice in name.type_descriptor.annotation) == NAMES
    helped = CliRunner().invoke(app, ["stage", "--help"], terminal_width=200)
    assert all(f"{n}:" in helped.output for n in NAMES), helped.output
    refused = CliRunner().invoke(app, ["stage", "materialize-prompts"])
    assert refused.exit_code == 2 and "prompts" in refused.output


def test_every_other_stage_command_is_a_stage_name() -> None:
    assert set(_cli().commands) - NOT_STAGES <= set(NAMES)


def test_one_deployment_and_one_flow_per_stage() -> None:
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    by_stage = {}
    for d in deployments:
        if "stage" not in d["tags"]:
            continue
        path, attr = d["entrypoint"].split(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), attr)
        assert isinstance(flow, Flow)
        assert d["name"] == f"llara-{flow.name}", d
        assert attr == f"{flow.name.replace('-', '_')}_flow", d
        by_stage[flow.name] = d["name"]
    assert tuple(by_stage) == NAMES  # and in pipeline order


def test_one_prefect_task_per_stage() -> None:
    names = []
    for module_name in ("tasks.prepare", "tasks.pretrain", "tasks.llm", "tasks.evaluate"):
        module = importlib.import_module(module_name)
        names += [t.name for t in vars(module).values() if isinstance(t, Task)]
    assert sorted(names) == sorted(NAMES)


def test_refresh_settings_and_choices_use_the_registry_names() -> None:
    from typing import get_args

    from flows import choices, common, stage_flows

    assert common.STAGES == NAMES
    assert tuple(get_args(choices.StageName)) == NAMES
    assert set(stage_flows.STAGE_CONFIGS) <= set(NAMES)
    for name, config in stage_flows.STAGE_CONFIGS.items():
        run = importlib.import_module(stage(name).module).run
        assert inspect.signature(run).parameters["config"].annotation in (config.__name__, config)
    with pytest.raises(ValueError, match="'pretrain-sr' is now 'pretrain'"):
        common.check_refresh(["pretrain-sr"])
