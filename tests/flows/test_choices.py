"""The deployments' run form: every parameter described, every closed choice a drop-down."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import get_args

import pytest
import yaml
from prefect.utilities.callables import parameter_schema

from flows import choices
from flows.common import STAGES
from flows.profiles import PROFILES
from stages.llm.curriculum import SCHEDULES
from stages.seqrec.models import MODELS

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINTS = sorted(
    {d["entrypoint"] for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
)
CLOSED = {
    "profile": PROFILES,
    "schedules": SCHEDULES,
    "schedule": SCHEDULES,
    "sr_baselines": MODELS,
    "llara_sr_models": MODELS,
    "models": MODELS,
    "refresh": STAGES,
    "mode": ("scoring", "generation"),
    "loss": ("ce", "bce1"),
    "title_mode": ("clean", "llara"),
}


def test_the_literals_follow_the_stages() -> None:
    assert set(get_args(choices.Profile)) == set(PROFILES)
    assert set(get_args(choices.Schedule)) == set(SCHEDULES)
    assert set(get_args(choices.Recommender)) == set(MODELS)
    assert set(get_args(choices.StageName)) == set(STAGES)


def _enum(prop: dict) -> list | None:
    """The drop-down values of a parameter, for a plain or list-valued, optional or not, field."""
    for option in [prop, *prop.get("anyOf", [])]:
        if "enum" in option:
            return option["enum"]
        if "enum" in option.get("items", {}):
            return option["items"]["enum"]
    return None


@pytest.mark.parametrize("entrypoint", ENTRYPOINTS)
def test_every_parameter_has_a_description_and_closed_choices_an_enum(entrypoint: str) -> None:
    path, name = entrypoint.split(":")
    flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
    properties = parameter_schema(flow.fn).model_dump()["properties"]
    undescribed = [p for p, prop in properties.items() if not prop.get("description")]
    assert undescribed == []
    for parameter, prop in properties.items():
        if parameter in CLOSED and prop.get("type") != "boolean":  # a stage flow's refresh is a flag
            assert _enum(prop) is not None and set(_enum(prop)) == set(CLOSED[parameter]), parameter
